import { readFileSync } from "node:fs";
import {
  ConfigError,
  readDuration,
  readEnum,
  readInt,
  readString,
  redactUrl,
  type Env,
} from "../../kit/config.js";
import type { ExportStart } from "./exporter.js";

/** One configured sink. Its name (its type) keys its cursor; each type appears at most once. */
export type SinkConfig = { name: string; includeContent: boolean } & (
  | { type: "stdout" }
  | { type: "file"; path: string }
  | { type: "splunk"; url: URL; token: string; index: string | undefined }
  | { type: "webhook"; url: URL; secret: string | undefined; secretHeader: string }
  | { type: "syslog"; host: string; port: number; facility: number }
);

export interface ExportConfig {
  sinks: SinkConfig[];
  start: ExportStart;
  batchSize: number;
  intervalMs: number;
  retryMaxMs: number;
  timeoutMs: number;
  /** How long the replica running the exporters holds its lease without renewing it. */
  leaseMs: number;
}

const sinksVar = "AIRLOCK_AUDIT_SINKS";
const sinkTypes = ["stdout", "file", "splunk", "webhook", "syslog"] as const;
const expectedEntry =
  "stdout, file:<path>, splunk:<http(s) URL>, webhook:<http(s) URL> or syslog:tcp://<host>:<port>";

/** SIEM export settings; the only place export reads the environment. No sinks: export is off. */
export function readExportConfig(env: Env): ExportConfig {
  const entries = readString(env, sinksVar, "")
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  const content = readString(env, "AIRLOCK_AUDIT_EXPORT_CONTENT", "")
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  const sinks: SinkConfig[] = [];
  for (const entry of entries) {
    const sink = readSink(env, entry, content);
    if (sinks.some((s) => s.name === sink.name)) {
      throw new ConfigError(`${sinksVar} names ${sink.name} twice: expected each sink type once`);
    }
    sinks.push(sink);
  }
  const unknown = content.find((name) => !sinks.some((s) => s.name === name));
  if (unknown !== undefined) {
    throw new ConfigError(
      `AIRLOCK_AUDIT_EXPORT_CONTENT names ${JSON.stringify(unknown)}: expected sinks named in ${sinksVar} (${sinks.map((s) => s.name).join(", ") || "none"})`,
    );
  }
  return {
    sinks,
    start: readEnum(env, "AIRLOCK_AUDIT_EXPORT_START", ["oldest", "now"], "oldest"),
    batchSize: readInt(env, "AIRLOCK_AUDIT_EXPORT_BATCH", 500, 1, 5000),
    intervalMs: readDuration(env, "AIRLOCK_AUDIT_EXPORT_INTERVAL", "2s", {
      min: 100,
      max: 3_600_000,
    }),
    retryMaxMs: readDuration(env, "AIRLOCK_AUDIT_EXPORT_RETRY_MAX", "1m", {
      min: 1000,
      max: 3_600_000,
    }),
    timeoutMs: readDuration(env, "AIRLOCK_AUDIT_EXPORT_TIMEOUT", "30s", {
      min: 1000,
      max: 600_000,
    }),
    leaseMs: readDuration(env, "AIRLOCK_AUDIT_EXPORT_LEASE", "15s", {
      min: 300,
      max: 600_000,
    }),
  };
}

function readSink(env: Env, entry: string, content: string[]): SinkConfig {
  const colon = entry.indexOf(":");
  const type = colon < 0 ? entry : entry.slice(0, colon);
  const target = colon < 0 ? "" : entry.slice(colon + 1).trim();
  const bad = (expected = expectedEntry) =>
    new ConfigError(
      `${sinksVar} entry ${JSON.stringify(redactEntry(entry))}: expected ${expected}`,
    );
  if (!(sinkTypes as readonly string[]).includes(type)) throw bad();
  const common = { name: type, includeContent: content.includes(type) };
  switch (type as (typeof sinkTypes)[number]) {
    case "stdout":
      if (target !== "") throw bad("stdout without a target");
      return { ...common, type: "stdout" };
    case "file":
      if (target === "") throw bad("file:<path>");
      return { ...common, type: "file", path: target };
    case "splunk": {
      const url = httpUrl(target, bad);
      // A bare collector address means its event endpoint.
      if (url.pathname === "/") url.pathname = "/services/collector/event";
      const token = readSecret(env, "AIRLOCK_AUDIT_SPLUNK_TOKEN");
      if (token === undefined) {
        throw new ConfigError(
          "AIRLOCK_AUDIT_SPLUNK_TOKEN (or AIRLOCK_AUDIT_SPLUNK_TOKEN_FILE) is not set: the splunk sink needs an HEC token",
        );
      }
      return {
        ...common,
        type: "splunk",
        url,
        token,
        index: readString(env, "AIRLOCK_AUDIT_SPLUNK_INDEX"),
      };
    }
    case "webhook":
      return {
        ...common,
        type: "webhook",
        url: httpUrl(target, bad),
        secret: readSecret(env, "AIRLOCK_AUDIT_WEBHOOK_SECRET"),
        secretHeader: readHeaderName(env, "AIRLOCK_AUDIT_WEBHOOK_SECRET_HEADER", "authorization"),
      };
    case "syslog": {
      const match = /^tcp:\/\/(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(target);
      const port = Number(match?.[2] ?? 514);
      if (!match || port < 1 || port > 65535) throw bad("syslog:tcp://<host>:<port>");
      return {
        ...common,
        type: "syslog",
        host: match[1]!.replace(/^\[|\]$/g, ""),
        port,
        facility: readInt(env, "AIRLOCK_AUDIT_SYSLOG_FACILITY", 13, 0, 23),
      };
    }
  }
}

function httpUrl(text: string, bad: (expected: string) => ConfigError): URL {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw bad("an http(s) URL after the sink type");
  }
  return url;
}

function readHeaderName(env: Env, name: string, fallback: string): string {
  const value = readString(env, name, fallback);
  if (!/^[A-Za-z0-9-]+$/.test(value)) {
    throw new ConfigError(`${name}=${JSON.stringify(value)}: expected an HTTP header name`);
  }
  return value.toLowerCase();
}

/** A secret from `name`, or from the file `name_FILE` names (for mounted secrets); never both. */
function readSecret(env: Env, name: string): string | undefined {
  const direct = readString(env, name);
  const path = readString(env, `${name}_FILE`);
  if (direct !== undefined && path !== undefined) {
    throw new ConfigError(`${name} and ${name}_FILE are both set: expected one of them`);
  }
  if (path === undefined) return direct;
  let secret: string;
  try {
    secret = readFileSync(path, "utf8").trim();
  } catch (err) {
    throw new ConfigError(
      `${name}_FILE=${JSON.stringify(path)}: expected a readable file (${(err as NodeJS.ErrnoException).code ?? "unreadable"})`,
    );
  }
  if (secret === "") {
    throw new ConfigError(
      `${name}_FILE=${JSON.stringify(path)}: expected a file holding the secret, not an empty one`,
    );
  }
  return secret;
}

// Webhook URLs often carry a secret in their query; a config error never prints it.
function redactEntry(entry: string): string {
  return redactUrl(entry).replace(/\?.*$/, "?***");
}
