import { resolve } from "node:path";
import {
  ConfigError,
  readAddr,
  readDuration,
  readEnum,
  readInt,
  readString,
  readUrl,
  type Addr,
  type Env,
} from "./config.js";

/** Settings every service process shares; each service reads its own in its config.ts. */
export interface RuntimeConfig {
  /** Postgres; unset in all-in-one mode means the embedded database. */
  databaseUrl: URL | undefined;
  /** Redis; unset in all-in-one mode means the in-process stand-in. */
  redisUrl: URL | undefined;
  dataDir: string;
  rpcAddr: Addr;
  /**
   * The largest RPC message accepted. The audit service's Append carries the
   * proxy's records, and a request record holds a whole prompt (up to the
   * proxy's body limit), so the bound sits above that.
   */
  rpcMaxMessageBytes: number;
  /** Unset only in all-in-one mode, where the process generates one. */
  serviceSecret: string | undefined;
  logLevel: string;
  shutdownGraceMs: number;
  /** Where to find the services this process does not host, by name. */
  peerUrls: ReadonlyMap<string, URL>;
}

export const serviceNames = ["identity", "policy", "proxy", "audit", "retention"] as const;

/**
 * Reads the shared settings. `split` is true when the process serves a
 * subset of the services: then other processes must reach the same
 * Postgres, Redis and secret, so none of them may be left to a default.
 */
export function readRuntimeConfig(env: Env, split: boolean): RuntimeConfig {
  const databaseUrl = readUrl(env, "DATABASE_URL", ["postgres:", "postgresql:"]);
  const redisUrl = readUrl(env, "REDIS_URL", ["redis:", "rediss:"]);
  const serviceSecret = readString(env, "AIRLOCK_SERVICE_SECRET");
  if (split) {
    const missing = [
      !databaseUrl && "DATABASE_URL",
      !redisUrl && "REDIS_URL",
      !serviceSecret && "AIRLOCK_SERVICE_SECRET",
    ].filter(Boolean);
    if (missing.length) {
      throw new ConfigError(
        `${missing.join(", ")} must be set when serving services in separate processes`,
      );
    }
  }
  if (serviceSecret !== undefined && Buffer.byteLength(serviceSecret) < 32) {
    throw new ConfigError(
      "AIRLOCK_SERVICE_SECRET: expected at least 32 characters (e.g. openssl rand -base64 32)",
    );
  }
  const peerUrls = new Map<string, URL>();
  for (const name of serviceNames) {
    const url = readUrl(env, `AIRLOCK_${name.toUpperCase()}_URL`);
    if (url) peerUrls.set(name, url);
  }
  return {
    databaseUrl,
    redisUrl,
    dataDir: resolve(readString(env, "AIRLOCK_DATA_DIR", "./.airlock")),
    rpcAddr: readAddr(env, "AIRLOCK_RPC_ADDR", "127.0.0.1:4001"),
    rpcMaxMessageBytes: readInt(
      env,
      "AIRLOCK_RPC_MAX_MESSAGE_BYTES",
      64 * 1024 * 1024,
      1024 * 1024,
      1024 * 1024 * 1024,
    ),
    serviceSecret,
    logLevel: readEnum(
      env,
      "AIRLOCK_LOG_LEVEL",
      ["trace", "debug", "info", "warn", "error", "silent"],
      "info",
    ),
    shutdownGraceMs: readDuration(env, "AIRLOCK_SHUTDOWN_GRACE", "10s", { max: 300_000 }),
    peerUrls,
  };
}
