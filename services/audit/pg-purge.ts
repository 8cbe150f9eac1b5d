import type { Pool } from "../kit/pg.js";

/** What a purge removes. */
export interface PurgeRange {
  orgId: string;
  scope: "content" | "records";
  sinceMs: number | undefined;
  beforeMs: number;
  /** Record kinds to keep whatever their age (receipts). */
  keepKinds: readonly string[];
  /** Actors under a legal hold. */
  keepActors: readonly string[];
  dryRun: boolean;
}

/** Rows per delete statement: small enough never to hold long locks or build a huge transaction. */
const batchSize = 5000;

/**
 * Deletes content (or whole records) of an org in bounded batches, each its
 * own transaction, so a crash midway leaves a consistent log and a rerun
 * finishes the job. Content rows go first, so a record never loses its
 * metadata while keeping its content.
 */
export class PgAuditPurger {
  constructor(private readonly pool: Pool) {}

  async purge(range: PurgeRange): Promise<number> {
    const match = `r.org_id = $1 AND r.time < $2 AND ($3::timestamptz IS NULL OR r.time >= $3)
      AND NOT (r.kind = ANY($4)) AND NOT (r.actor = ANY($5))`;
    const params = [
      range.orgId,
      new Date(range.beforeMs).toISOString(),
      range.sinceMs === undefined ? null : new Date(range.sinceMs).toISOString(),
      range.keepKinds,
      range.keepActors,
    ];
    if (range.dryRun) {
      const sql =
        range.scope === "content"
          ? `SELECT count(*) AS n FROM audit.contents c JOIN audit.records r
               ON r.id = c.record_id AND r.time = c.time WHERE ${match}`
          : `SELECT count(*) AS n FROM audit.records r WHERE ${match}`;
      const { rows } = await this.pool.query<{ n: string }>(sql, params);
      return Number(rows[0]!.n);
    }
    let total = 0;
    for (;;) {
      const { rows } = await this.pool.query<{ n: string }>(
        `WITH doomed AS (
           SELECT r.id, r.time FROM audit.records r
           ${range.scope === "content" ? "JOIN audit.contents c ON c.record_id = r.id AND c.time = r.time" : ""}
           WHERE ${match} LIMIT ${batchSize}
         ), gone_content AS (
           DELETE FROM audit.contents c USING doomed d
           WHERE c.record_id = d.id AND c.time = d.time RETURNING 1
         ), gone_records AS (
           ${
             range.scope === "records"
               ? "DELETE FROM audit.records r USING doomed d WHERE r.id = d.id AND r.time = d.time RETURNING 1"
               : "SELECT 1 WHERE false"
           }
         )
         SELECT (SELECT count(*) FROM doomed) AS n`,
        params,
      );
      const n = Number(rows[0]!.n);
      total += n;
      if (n < batchSize) return total;
    }
  }
}
