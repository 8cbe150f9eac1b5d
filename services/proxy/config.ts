import { resolve } from "node:path";
import {
  readAddr,
  readDuration,
  readEnum,
  readInt,
  readString,
  type Addr,
  type Env,
} from "../kit/config.js";
import type { AuditMode } from "./audit-mode.js";
import { readRouting, type Routing } from "./routing.js";
import type { SyncMode } from "./group-sync.js";

const MiB = 1024 * 1024;

/** Where and how the proxy keeps its records until audit has them. */
export interface SpoolConfig {
  /** Unset: `spool` in the data directory. */
  dir: string | undefined;
  sync: SyncMode;
  syncIntervalMs: number;
  segmentBytes: number;
  maxBytes: number;
}

export interface ProxyConfig {
  httpAddr: Addr;
  routing: Routing;
  maxBodyBytes: number;
  /** Attempts per target after the first, for connect errors, 429, 5xx and 529. */
  retries: number;
  /** The longest wait before a retry, whatever Retry-After asks. */
  maxRetryWaitMs: number;
  /** How long an upstream may take to send its response headers. */
  headersTimeoutMs: number;
  /** How long a tripped breaker stays open before it lets a trial call through. */
  breakerResetMs: number;
  /** What happens to a call whose request record cannot be written. */
  auditMode: AuditMode;
  spool: SpoolConfig;
}

/** The proxy's settings; the only place it reads the environment. */
export function readProxyConfig(env: Env): ProxyConfig {
  return {
    httpAddr: readAddr(env, "AIRLOCK_HTTP_ADDR", "127.0.0.1:4000"),
    routing: readRouting(env),
    maxBodyBytes: readInt(
      env,
      "AIRLOCK_PROXY_MAX_BODY_BYTES",
      20 * 1024 * 1024,
      1024,
      512 * 1024 * 1024,
    ),
    retries: readInt(env, "AIRLOCK_UPSTREAM_RETRIES", 2, 0, 10),
    maxRetryWaitMs: readDuration(env, "AIRLOCK_UPSTREAM_MAX_RETRY_WAIT", "20s", { max: 600_000 }),
    headersTimeoutMs: readDuration(env, "AIRLOCK_UPSTREAM_HEADERS_TIMEOUT", "10m", {
      min: 1000,
      max: 3_600_000,
    }),
    breakerResetMs: readDuration(env, "AIRLOCK_BREAKER_RESET", "10s", { min: 100, max: 3_600_000 }),
    auditMode: readEnum(env, "AIRLOCK_AUDIT_MODE", ["strict", "best-effort"], "strict"),
    spool: readSpoolConfig(env),
  };
}

function readSpoolConfig(env: Env): SpoolConfig {
  const dir = readString(env, "AIRLOCK_SPOOL_DIR");
  return {
    dir: dir === undefined ? undefined : resolve(dir),
    sync: readEnum(env, "AIRLOCK_SPOOL_SYNC", ["interval", "always"], "interval"),
    syncIntervalMs: readDuration(env, "AIRLOCK_SPOOL_SYNC_INTERVAL", "5ms", {
      min: 1,
      max: 10_000,
    }),
    segmentBytes: readInt(env, "AIRLOCK_SPOOL_SEGMENT_BYTES", 8 * MiB, 4096, 1024 * MiB),
    maxBytes: readInt(env, "AIRLOCK_SPOOL_MAX_BYTES", 1024 * MiB, 4096, 1024 * 1024 * MiB),
  };
}
