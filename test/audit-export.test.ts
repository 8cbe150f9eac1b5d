import test, { type ExecutionContext } from "ava";
import { mkdir, mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server as TcpServer,
  type Socket,
} from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { Registry } from "prom-client";
import { readExportConfig } from "../services/audit/export/config.js";
import { SinkExporter, type SinkExporterOptions } from "../services/audit/export/exporter.js";
import { FileSink } from "../services/audit/export/file-sink.js";
import { ExportMetrics } from "../services/audit/export/metrics.js";
import type { OcsfEvent } from "../services/audit/export/ocsf.js";
import { PgExportCursors } from "../services/audit/export/pg-cursors.js";
import type { Sink } from "../services/audit/export/sink.js";
import type { ExportSource } from "../services/audit/export/source.js";
import { SplunkSink } from "../services/audit/export/splunk-sink.js";
import { startExporters } from "../services/audit/export/start-exporters.js";
import { SyslogSink } from "../services/audit/export/syslog-sink.js";
import { WebhookSink } from "../services/audit/export/webhook-sink.js";
import { createLogger } from "../services/kit/log.js";
import { createPool, migrate, type Pool } from "../services/kit/pg.js";
import { createTestDatabase } from "./support/env.js";
import { MemoryExportSource } from "./support/export-source.js";
import { LogCapture } from "./support/log-capture.js";

const migrations = new URL("../services/audit/migrations", import.meta.url).pathname;
const log = createLogger({ service: "audit-export-test", destination: new LogCapture() });

let pool: Pool;
let dropDatabase: (() => Promise<void>) | undefined;

test.before(async () => {
  const db = await createTestDatabase();
  dropDatabase = db.drop;
  pool = createPool(db.url, { applicationName: "audit-export-test" });
  await migrate(pool, "audit", migrations, log);
});

test.after.always(async () => {
  await pool?.end();
  await dropDatabase?.();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sorted = (ids: string[]) => [...ids].sort();

async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = 15_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function freePort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function listen(server: Server | TcpServer, port = 0): Promise<number> {
  return new Promise((resolve) =>
    server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
}

async function metricSum(registry: Registry, name: string): Promise<number> {
  const metric = await registry.getSingleMetric(name)!.get();
  return metric.values.reduce((sum, v) => sum + v.value, 0);
}

/** An exporter over the in-memory log and the real cursor table, with quick retries. */
function runExporter(
  t: ExecutionContext,
  name: string,
  sink: Sink,
  source: ExportSource,
  options: Partial<SinkExporterOptions> = {},
) {
  const registry = new Registry();
  const exporter = new SinkExporter({
    name,
    sink,
    source,
    cursors: new PgExportCursors(pool),
    log,
    metrics: new ExportMetrics(registry),
    batchSize: 2,
    intervalMs: 50,
    includeContent: false,
    start: "oldest",
    backoff: { minMs: 20, maxMs: 100 },
    drainMs: 1000,
    ...options,
  });
  exporter.start();
  // A test that fails half-way must not leave an exporter holding a receiver's connection open.
  t.teardown(() => exporter.stop());
  return {
    exporter,
    records: () => metricSum(registry, "airlock_audit_export_records_total"),
    failures: () => metricSum(registry, "airlock_audit_export_failures_total"),
    stop: () => exporter.stop(),
  };
}

/** A receiver that is not there (or refuses) at first and comes back on `up()`. */
interface Receiver {
  /** Ids of the records it accepted, in arrival order. */
  ids(): string[];
  up(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The promise every sink keeps: records stored while the receiver is down
 * all arrive, once each, when it comes back; a restart from the saved cursor
 * sends only what is new.
 */
async function downThenBack(
  t: ExecutionContext,
  name: string,
  receiver: Receiver,
  makeSink: () => Sink,
): Promise<void> {
  t.teardown(() => receiver.close());
  const source = new MemoryExportSource();
  const first = [...source.append(`${name}-org-a`, 3), ...source.append(`${name}-org-b`, 2)];
  const a = runExporter(t, name, makeSink(), source);
  await until(async () => (await a.failures()) >= 2, "failed attempts while the receiver is down");
  t.deepEqual(receiver.ids(), []);
  await receiver.up();
  await until(() => receiver.ids().length >= first.length, "the records stored during the outage");
  await a.stop();
  t.deepEqual(sorted(receiver.ids()), sorted(first), "each record exactly once");
  t.deepEqual(await new PgExportCursors(pool).load(name), await source.heads(), "cursor saved");

  const more = source.append(`${name}-org-a`, 2);
  const b = runExporter(t, name, makeSink(), source);
  await until(() => receiver.ids().length >= first.length + more.length, "the new records");
  await sleep(200); // a few more polls: a duplicate would arrive now
  await b.stop();
  t.deepEqual(sorted(receiver.ids()), sorted([...first, ...more]), "a restart sends nothing twice");
}

/** Splits a syslog connection's bytes into octet-counted messages. */
function readFrames(socket: Socket, onMessage: (message: string) => void): void {
  let buffer = Buffer.alloc(0);
  socket.on("data", (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const space = buffer.indexOf(0x20);
      if (space < 0) return;
      const length = Number(buffer.subarray(0, space).toString("ascii"));
      if (buffer.length < space + 1 + length) return;
      onMessage(buffer.subarray(space + 1, space + 1 + length).toString("utf8"));
      buffer = buffer.subarray(space + 1 + length);
    }
  });
}

const syslogRecordId = (message: string) =>
  (JSON.parse(message.slice(message.indexOf(" - {") + 3)) as OcsfEvent).metadata.uid;

async function body(req: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text;
}

test("PgExportCursors keeps each sink's cursor, and only its own", async (t) => {
  const cursors = new PgExportCursors(pool);
  t.is(await cursors.load("cursor-test-a"), undefined);
  await cursors.save("cursor-test-a", { "org-1": 1 });
  await cursors.save("cursor-test-a", { "org-1": 3, "org-2": 9_007_199_254 });
  await cursors.save("cursor-test-b", { "org-1": 1 });
  const fresh = new PgExportCursors(pool);
  t.deepEqual(await fresh.load("cursor-test-a"), { "org-1": 3, "org-2": 9_007_199_254 });
  t.deepEqual(await fresh.load("cursor-test-b"), { "org-1": 1 });
});

test("Splunk HEC: a collector answering 503 gets every record once when it recovers", async (t) => {
  let healthy = false;
  const accepted: { auth: string | undefined; lines: string[] }[] = [];
  const server = createServer(async (req, res) => {
    const text = await body(req);
    if (!healthy) return res.writeHead(503).end('{"text":"Server is busy","code":9}');
    accepted.push({ auth: req.headers.authorization, lines: text.split("\n") });
    res.writeHead(200, { "content-type": "application/json" }).end('{"text":"Success","code":0}');
  });
  const port = await listen(server);
  const url = new URL(`http://127.0.0.1:${port}/services/collector/event`);
  const receiver: Receiver = {
    ids: () =>
      accepted.flatMap((a) => a.lines.map((l) => (JSON.parse(l).event as OcsfEvent).metadata.uid)),
    up: async () => void (healthy = true),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const sink = () =>
    new SplunkSink({ url, token: "hec-token", host: "test-host", index: "audit", timeoutMs: 5000 });
  await downThenBack(t, "hec-503", receiver, sink);

  t.true(accepted.every((a) => a.auth === "Splunk hec-token"));
  t.true(
    accepted.every((a) => a.lines.length <= 2),
    "one POST per batch, batches of 2",
  );
  const envelope = JSON.parse(accepted[0]!.lines[0]!);
  t.like(envelope, { host: "test-host", source: "airlock", sourcetype: "ocsf:api_activity" });
  t.is(envelope.index, "audit");
  t.is(envelope.time, envelope.event.time / 1000);
  t.is(envelope.event.class_uid, 6003);
  t.is(envelope.event.unmapped.content, undefined, "content stays home by default");
});

test("Splunk HEC: the collector's Retry-After sets the wait, not the exporter's backoff", async (t) => {
  const times: number[] = [];
  const server = createServer(async (req, res) => {
    await body(req);
    times.push(Date.now());
    if (times.length === 1) return res.writeHead(503, { "retry-after": "1" }).end();
    res.writeHead(200).end();
  });
  const port = await listen(server);
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const source = new MemoryExportSource();
  source.append("org-retry-after", 1);
  const url = new URL(`http://127.0.0.1:${port}/services/collector/event`);
  const run = runExporter(
    t,
    "hec-retry-after",
    new SplunkSink({ url, token: "t", host: "h", index: undefined, timeoutMs: 5000 }),
    source,
  );
  await until(() => times.length === 2, "the retry");
  await run.stop();
  t.true(times[1]! - times[0]! >= 950, `waited ${times[1]! - times[0]!}ms, backoff would be 20ms`);
});

test("webhook: a receiver that is down gets every record once when it comes up", async (t) => {
  const port = await freePort();
  const accepted: { auth: string | undefined; events: OcsfEvent[] }[] = [];
  const server = createServer(async (req, res) => {
    accepted.push({ auth: req.headers.authorization, events: JSON.parse(await body(req)) });
    res.writeHead(204).end();
  });
  const receiver: Receiver = {
    ids: () => accepted.flatMap((a) => a.events.map((e) => e.metadata.uid)),
    up: async () => void (await listen(server, port)),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const url = new URL(`http://127.0.0.1:${port}/hooks/airlock`);
  const sink = () =>
    new WebhookSink({ url, secret: "hook-secret", secretHeader: "authorization", timeoutMs: 5000 });
  await downThenBack(t, "webhook-down", receiver, sink);
  t.true(accepted.every((a) => a.auth === "Bearer hook-secret"));
  t.true(accepted.every((a) => Array.isArray(a.events) && a.events.length <= 2));
});

test("syslog: a listener that is down gets every record once, framed and prioritised", async (t) => {
  const port = await freePort();
  const messages: string[] = [];
  const server = createTcpServer((socket) => readFrames(socket, (m) => messages.push(m)));
  const receiver: Receiver = {
    ids: () => messages.map(syslogRecordId),
    up: async () => void (await listen(server, port)),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const sink = () =>
    new SyslogSink({
      host: "127.0.0.1",
      port,
      facility: 13,
      hostname: "test-host",
      appName: "airlock",
      procId: "77",
      timeoutMs: 5000,
    });
  await downThenBack(t, "syslog-down", receiver, sink);
  t.regex(messages[0]!, /^<110>1 \d{4}-\d\d-\d\dT[\d:.]+Z test-host airlock 77 llm\.response - \{/);
});

test("syslog: after the listener restarts, the next batch goes out on a new connection", async (t) => {
  const ids: string[] = [];
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    readFrames(socket, (m) => ids.push(syslogRecordId(m)));
  });
  const port = await listen(server);
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const source = new MemoryExportSource();
  const first = source.append("org-reconnect", 2);
  const sink = new SyslogSink({
    ...{ host: "127.0.0.1", port, facility: 13, hostname: "h", appName: "airlock", procId: "1" },
    timeoutMs: 5000,
  });
  const run = runExporter(t, "syslog-reconnect", sink, source);
  await until(() => ids.length === 2, "the first records");
  // The receiver restarts: its connections go away.
  for (const socket of sockets) socket.destroy();
  await sleep(100);
  const later = source.append("org-reconnect", 2);
  run.exporter.wake();
  await until(() => ids.length === 4, "the records after the restart");
  await run.stop();
  t.deepEqual(ids, [...first, ...later]);
  t.is(sockets.size, 2, "a second connection");
});

test("file: a directory that appears late gets every record once; a rotated file is reopened", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "airlock-export-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "later", "audit.jsonl");
  const read = async (p: string) =>
    (await readFile(p, "utf8").catch(() => ""))
      .split("\n")
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as OcsfEvent).metadata.uid);
  let lines: string[] = [];
  const refresh = setInterval(async () => (lines = await read(path)), 10);
  t.teardown(() => clearInterval(refresh));
  const receiver: Receiver = {
    ids: () => lines,
    up: async () => void (await mkdir(join(dir, "later"))),
    close: async () => undefined,
  };
  await downThenBack(t, "file-late-dir", receiver, () => new FileSink(path));

  const source = new MemoryExportSource();
  const before = source.append("org-rotate", 2);
  const run = runExporter(t, "file-rotate", new FileSink(join(dir, "rotate.jsonl")), source);
  await until(async () => (await run.records()) === 2, "the first two records");
  await rename(join(dir, "rotate.jsonl"), join(dir, "rotate.jsonl.1"));
  const after = source.append("org-rotate", 2);
  run.exporter.wake();
  await until(async () => (await run.records()) === 4, "the two after rotation");
  await run.stop();
  t.deepEqual(await read(join(dir, "rotate.jsonl.1")), before);
  t.deepEqual(await read(join(dir, "rotate.jsonl")), after);
});

test("stop() during an outage returns at once and leaves the cursor where it was", async (t) => {
  const source = new MemoryExportSource();
  source.append("org-stop", 3);
  const url = new URL(`http://127.0.0.1:${await freePort()}/`);
  const run = runExporter(
    t,
    "webhook-stop",
    new WebhookSink({ url, secret: undefined, secretHeader: "authorization", timeoutMs: 5000 }),
    source,
    // After the first failure the exporter waits half a minute or more: stop must cut that short.
    { backoff: { minMs: 60_000, maxMs: 60_000 } },
  );
  await until(async () => (await run.failures()) >= 1, "a failed attempt");
  const started = Date.now();
  await run.stop();
  t.true(Date.now() - started < 1000, `stop took ${Date.now() - started}ms`);
  t.is(await new PgExportCursors(pool).load("webhook-stop"), undefined);
});

/** Collects what a sink was sent, acknowledging everything. */
class CollectingSink implements Sink {
  readonly ids: string[] = [];
  async send(events: readonly OcsfEvent[]): Promise<void> {
    this.ids.push(...events.map((e) => e.metadata.uid));
  }
  async close(): Promise<void> {}
}

test("a source that hands back records behind the cursor still gets each sent once", async (t) => {
  const source = new MemoryExportSource();
  const ids = source.append("org-sloppy", 5);
  // Ignores the cursor: every read returns the chain from its start.
  const sloppy: ExportSource = {
    readAfter: (_cursor, limit, options) => source.readAfter({}, limit, options),
    heads: () => source.heads(),
  };
  const sink = new CollectingSink();
  const run = runExporter(t, "sloppy-source", sink, sloppy, { batchSize: 10 });
  await until(async () => (await run.records()) === 5, "the records");
  await sleep(200);
  await run.stop();
  t.deepEqual(sink.ids, ids);
});

test("a new sink starting now skips what was stored before and remembers where now was", async (t) => {
  const source = new MemoryExportSource();
  source.append("org-now", 3);
  const sink = new CollectingSink();
  const run = runExporter(t, "start-now", sink, source, { start: "now" });
  await until(
    async () => (await new PgExportCursors(pool).load("start-now")) !== undefined,
    "a cursor",
  );
  const later = source.append("org-now", 2);
  run.exporter.wake();
  await until(async () => (await run.records()) === 2, "the new records");
  await run.stop();
  t.deepEqual(sink.ids, later);
});

test("startExporters: stdout from config, content when asked, new records at once on wake()", async (t) => {
  const stdout = new PassThrough();
  let text = "";
  stdout.on("data", (chunk) => (text += chunk));
  const events = () =>
    text
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as OcsfEvent);
  const source = new MemoryExportSource();
  const first = source.append("org-stdout", 2);
  const registry = new Registry();
  const exporters = startExporters({
    config: readExportConfig({
      AIRLOCK_AUDIT_SINKS: "stdout",
      AIRLOCK_AUDIT_EXPORT_CONTENT: "stdout",
      // Only wake() can bring the later records in time.
      AIRLOCK_AUDIT_EXPORT_INTERVAL: "1h",
    }),
    source,
    cursors: new PgExportCursors(pool),
    log,
    registry,
    stdout,
  });
  t.teardown(() => exporters.stop());
  await until(() => events().length === 2, "the stored records");
  const later = source.append("org-stdout", 1);
  exporters.wake();
  await until(() => events().length === 3, "the record stored after start");
  await exporters.stop();
  t.deepEqual(
    events().map((e) => e.metadata.uid),
    [...first, ...later],
  );
  t.deepEqual(events()[0]!.unmapped.content, { text: `prompt of ${first[0]}` });
  const metrics = await registry.metrics();
  t.regex(metrics, /airlock_audit_export_records_total\{sink="stdout"\} 3/);
  t.regex(metrics, /airlock_audit_export_lag_records\{sink="stdout"\} 0/);
  t.regex(metrics, /airlock_audit_export_lag_seconds\{sink="stdout"\} 0/);
});

test("startExporters: failing deliveries are logged and counted, never with their secrets", async (t) => {
  const capture = new LogCapture();
  const port = await freePort();
  const source = new MemoryExportSource();
  source.append("org-secrets", 1);
  const registry = new Registry();
  const exporters = startExporters({
    config: readExportConfig({
      AIRLOCK_AUDIT_SINKS: `splunk:http://127.0.0.1:${port},webhook:http://127.0.0.1:${port}/in/path-secret`,
      AIRLOCK_AUDIT_SPLUNK_TOKEN: "hec-token-value",
      AIRLOCK_AUDIT_WEBHOOK_SECRET: "webhook-secret-value",
    }),
    source,
    cursors: new PgExportCursors(pool),
    log: createLogger({ service: "audit", destination: capture, level: "debug" }),
    registry,
  });
  t.teardown(() => exporters.stop());
  await until(
    () => capture.lines.filter((l) => l.includes("audit export attempt failed")).length >= 2,
    "a failure logged per sink",
  );
  await exporters.stop();
  t.regex(capture.text, /"sink":"splunk"/);
  t.regex(capture.text, /"sink":"webhook"/);
  t.notRegex(capture.text, /hec-token-value|webhook-secret-value|path-secret/);
  t.regex(
    await registry.metrics(),
    /airlock_audit_export_failures_total\{sink="webhook",stage="deliver"\} [1-9]/,
  );
});
