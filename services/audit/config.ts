import { readDuration, readInt, readString, readUrl, type Env } from "../kit/config.js";

export interface AuditConfig {
  /**
   * A connection as the role that owns the audit schema, for migrations,
   * partition upkeep and Purge; DATABASE_URL's role then only reads and
   * appends (it cannot delete or change a record). Unset: one role does all.
   */
  ownerDatabaseUrl: string | undefined;
  /** A PEM (PKCS#8) Ed25519 private key file; unset: one kept under the data directory. */
  signingKeyFile: string | undefined;
  /** Sign a chain's head once it has moved this many records past its last checkpoint. */
  checkpointEvery: number;
  /** And at least this often while it moves. */
  checkpointIntervalMs: number;
  /** Days of partitions created ahead of today. */
  partitionDaysAhead: number;
  /** How often an idle Tail looks for records that another replica stored. */
  tailPollMs: number;
  /** About how many rows one purge batch (one transaction) deletes. */
  purgeBatch: number;
}

/** The audit service's settings; the only place it reads the environment. */
export function readAuditConfig(env: Env): AuditConfig {
  return {
    ownerDatabaseUrl: readUrl(env, "AIRLOCK_AUDIT_OWNER_DATABASE_URL", [
      "postgres:",
      "postgresql:",
    ])?.toString(),
    signingKeyFile: readString(env, "AIRLOCK_AUDIT_SIGNING_KEY_FILE"),
    checkpointEvery: readInt(env, "AIRLOCK_AUDIT_CHECKPOINT_EVERY", 1000, 1, 1_000_000),
    checkpointIntervalMs: readDuration(env, "AIRLOCK_AUDIT_CHECKPOINT_INTERVAL", "30s", {
      min: 100,
      max: 86_400_000,
    }),
    partitionDaysAhead: readInt(env, "AIRLOCK_AUDIT_PARTITION_DAYS_AHEAD", 7, 1, 90),
    tailPollMs: readDuration(env, "AIRLOCK_AUDIT_TAIL_POLL", "1s", { min: 10, max: 60_000 }),
    purgeBatch: readInt(env, "AIRLOCK_AUDIT_PURGE_BATCH", 5000, 1, 1_000_000),
  };
}
