import { readDuration, type Env } from "../kit/config.js";

export interface PolicyConfig {
  /** How often a replica compares versions with Postgres, in case it missed a change message. */
  catchUpEveryMs: number;
  /** How long a principal's roles and groups are kept before identity is asked again. */
  subjectTtlMs: number;
}

/** The policy service's settings; the only place it reads the environment. */
export function readPolicyConfig(env: Env): PolicyConfig {
  return {
    catchUpEveryMs: readDuration(env, "AIRLOCK_POLICY_CATCH_UP", "5s", {
      min: 100,
      max: 3_600_000,
    }),
    subjectTtlMs: readDuration(env, "AIRLOCK_POLICY_SUBJECT_TTL", "30s", {
      min: 0,
      max: 3_600_000,
    }),
  };
}
