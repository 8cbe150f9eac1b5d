/**
 * Typed readers over the environment. Every service's config.ts uses these,
 * so a bad value always stops start-up with one line naming the variable,
 * the value and what was expected.
 */

export type Env = Readonly<Record<string, string | undefined>>;

/** A configuration value that cannot be used. The message is shown as is. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function bad(name: string, value: string, expected: string): ConfigError {
  return new ConfigError(`${name}=${JSON.stringify(value)}: expected ${expected}`);
}

const durationUnits: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Parses `250ms`, `30s`, `15m`, `12h`, `30d` into milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * durationUnits[match[2]!]!;
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** An optional string; `fallback` when unset or blank. */
export function readString(env: Env, name: string): string | undefined;
export function readString(env: Env, name: string, fallback: string): string;
export function readString(env: Env, name: string, fallback?: string): string | undefined {
  return raw(env, name) ?? fallback;
}

/** A required string. */
export function requireString(env: Env, name: string, why: string): string {
  const value = raw(env, name);
  if (value === undefined) throw new ConfigError(`${name} is not set: ${why}`);
  return value;
}

/** A duration in milliseconds within [min, max]. */
export function readDuration(
  env: Env,
  name: string,
  fallback: string,
  bounds: { min?: number; max?: number } = {},
): number {
  const text = raw(env, name) ?? fallback;
  const ms = parseDuration(text);
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = bounds;
  if (ms === undefined || ms < min || ms > max) {
    throw bad(name, text, `a duration like 30s, 15m, 12h or 30d${describeBounds(min, max)}`);
  }
  return ms;
}

function describeBounds(min: number, max: number): string {
  const parts: string[] = [];
  if (min > 0) parts.push(`at least ${min}ms`);
  if (max < Number.MAX_SAFE_INTEGER) parts.push(`at most ${max}ms`);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

/** An integer within [min, max]. */
export function readInt(
  env: Env,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const text = raw(env, name);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^-?\d+$/.test(text) || n < min || n > max) {
    throw bad(name, text, `an integer from ${min} to ${max}`);
  }
  return n;
}

/** One of a fixed set of words. */
export function readEnum<T extends string>(
  env: Env,
  name: string,
  values: readonly T[],
  fallback: T,
): T {
  const text = raw(env, name) ?? fallback;
  if (!(values as readonly string[]).includes(text)) {
    throw bad(name, text, `one of ${values.join(", ")}`);
  }
  return text as T;
}

/** A listen address `host:port`; port 0 picks a free port. */
export interface Addr {
  host: string;
  port: number;
}

export function readAddr(env: Env, name: string, fallback: string): Addr {
  const text = raw(env, name) ?? fallback;
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw bad(name, text, "host:port, e.g. 127.0.0.1:4001");
  return { host: match[1]!.replace(/^\[|\]$/g, ""), port };
}

/** An http(s) URL, or a URL of one of `protocols`. */
export function readUrl(
  env: Env,
  name: string,
  protocols: readonly string[] = ["http:", "https:"],
): URL | undefined {
  const text = raw(env, name);
  if (text === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad(name, redactUrl(text), `a URL (${protocols.join(" or ")})`);
  }
  if (!protocols.includes(url.protocol)) {
    throw bad(name, redactUrl(text), `a URL (${protocols.join(" or ")})`);
  }
  return url;
}

/** Hides a password in a URL so that a config error never prints it. */
export function redactUrl(text: string): string {
  return text.replace(/\/\/([^:/@]+):[^@/]*@/, "//$1:***@");
}

/** Turns command-line flags into the environment names they mirror: `--rpc-addr` → `AIRLOCK_RPC_ADDR`. */
export function flagsToEnv(flags: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [flag, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    const name = flag.replace(/-/g, "_").toUpperCase();
    env[name === "DATABASE_URL" || name === "REDIS_URL" ? name : `AIRLOCK_${name}`] = value;
  }
  return env;
}
