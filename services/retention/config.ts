import { ConfigError, readDuration, readString, type Env } from "../kit/config.js";
import {
  dataClasses,
  parseRetention,
  retentionSyntax,
  ruleSetProblem,
  type RuleSet,
} from "./durations.js";

export interface RetentionConfig {
  /** The rules of every org that has not set its own. */
  defaults: RuleSet;
  /** Time between scheduled runs; 0s runs only on demand. */
  intervalMs: number;
  /** Dead (revoked or expired) tokens are deleted this long after they died. */
  tokenGraceMs: number;
}

const defaultRules: RuleSet = { content: 30, metadata: 400, receipts: null };

/** The retention service's settings; the only place it reads the environment. */
export function readRetentionConfig(env: Env): RetentionConfig {
  const defaults = { ...defaultRules };
  for (const dataClass of dataClasses) {
    const name = `AIRLOCK_RETENTION_${dataClass.toUpperCase()}`;
    const text = readString(env, name);
    if (text === undefined) continue;
    const days = parseRetention(text);
    if (days === undefined)
      throw new ConfigError(`${name}=${JSON.stringify(text)}: expected ${retentionSyntax}`);
    defaults[dataClass] = days;
  }
  const problem = ruleSetProblem(defaults);
  if (problem) throw new ConfigError(`AIRLOCK_RETENTION_CONTENT/METADATA/RECEIPTS: ${problem}`);
  return {
    defaults,
    intervalMs: readDuration(env, "AIRLOCK_RETENTION_INTERVAL", "1h", { max: 7 * 86_400_000 }),
    tokenGraceMs: readDuration(env, "AIRLOCK_RETENTION_TOKEN_GRACE", "7d", {
      max: 3650 * 86_400_000,
    }),
  };
}
