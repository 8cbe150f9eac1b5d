import { hostname as machineName } from "node:os";
import type { Writable } from "node:stream";
import type { Registry } from "prom-client";
import type { Logger } from "../../kit/log.js";
import type { ExportConfig, SinkConfig } from "./config.js";
import { SinkExporter } from "./exporter.js";
import { FileSink } from "./file-sink.js";
import { ExportMetrics } from "./metrics.js";
import type { Sink } from "./sink.js";
import { SplunkSink } from "./splunk-sink.js";
import type { ExportCursors, ExportSource } from "./source.js";
import { StreamSink } from "./stream-sink.js";
import { SyslogSink } from "./syslog-sink.js";
import { WebhookSink } from "./webhook-sink.js";

/** The running exporters, one per sink. */
export interface Exporters {
  /** New records were stored: every exporter looks now. Cheap; call it after each Append. */
  wake(): void;
  /** Stops every exporter, letting deliveries under way finish for a few seconds. */
  stop(): Promise<void>;
}

export interface StartExportersOptions {
  config: ExportConfig;
  source: ExportSource;
  cursors: ExportCursors;
  log: Logger;
  registry: Registry;
  /** Where the stdout sink writes: the process's stdout unless a test passes its own. */
  stdout?: Writable;
  /** Stamped on Splunk events and syslog messages: this machine's name unless given. */
  hostname?: string;
}

// The first retry comes soon; config bounds the longest wait.
const retryMinMs = 1000;
const drainMs = 5000;

/** Starts one exporter per configured sink; with none configured, nothing runs. */
export function startExporters(options: StartExportersOptions): Exporters {
  const { config, log } = options;
  if (config.sinks.length === 0) return { wake: () => undefined, stop: async () => undefined };
  const metrics = new ExportMetrics(options.registry);
  const exporters = config.sinks.map((sinkConfig) => {
    const exporter = new SinkExporter({
      name: sinkConfig.name,
      sink: createSink(sinkConfig, {
        timeoutMs: config.timeoutMs,
        stdout: options.stdout ?? process.stdout,
        hostname: options.hostname ?? machineName(),
      }),
      source: options.source,
      cursors: options.cursors,
      log,
      metrics,
      batchSize: config.batchSize,
      intervalMs: config.intervalMs,
      includeContent: sinkConfig.includeContent,
      start: config.start,
      backoff: { minMs: retryMinMs, maxMs: config.retryMaxMs },
      drainMs,
    });
    exporter.start();
    log.info(
      {
        sink: sinkConfig.name,
        target: describeTarget(sinkConfig),
        includeContent: sinkConfig.includeContent,
      },
      "audit export started",
    );
    return exporter;
  });
  return {
    wake: () => exporters.forEach((e) => e.wake()),
    stop: async () => {
      await Promise.all(exporters.map((e) => e.stop()));
    },
  };
}

/** The sink a configuration describes. */
export function createSink(
  config: SinkConfig,
  deps: { timeoutMs: number; stdout: Writable; hostname: string },
): Sink {
  switch (config.type) {
    case "stdout":
      return new StreamSink(deps.stdout);
    case "file":
      return new FileSink(config.path);
    case "splunk":
      return new SplunkSink({
        url: config.url,
        token: config.token,
        host: deps.hostname,
        index: config.index,
        timeoutMs: deps.timeoutMs,
      });
    case "webhook":
      return new WebhookSink({
        url: config.url,
        secret: config.secret,
        secretHeader: config.secretHeader,
        timeoutMs: deps.timeoutMs,
      });
    case "syslog":
      return new SyslogSink({
        host: config.host,
        port: config.port,
        facility: config.facility,
        hostname: deps.hostname,
        appName: "airlock",
        procId: String(process.pid),
        timeoutMs: deps.timeoutMs,
      });
  }
}

// Where a sink sends, for logs: of a URL only its host, as its path or query may hold a secret.
function describeTarget(config: SinkConfig): string {
  switch (config.type) {
    case "stdout":
      return "stdout";
    case "file":
      return config.path;
    case "splunk":
    case "webhook":
      return config.url.host;
    case "syslog":
      return `${config.host}:${config.port}`;
  }
}
