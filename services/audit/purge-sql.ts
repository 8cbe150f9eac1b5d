import { dayName, partitionLock } from "./partitions.js";
import type { Hold, PurgePolicy } from "./purge-policy.js";

/** A statement and its parameters. */
export interface Sql {
  text: string;
  values: unknown[];
}

/** What becomes of a record, from the parts of its classification. */
function fate(p: { expired: string; contentExpired: string; held: string }) {
  return {
    /** Deleted whole, content with it. */
    doomed: `(${p.expired} AND NOT ${p.held})`,
    /** Keeps its metadata, loses its content (when it has any). */
    losing: `(NOT ${p.expired} AND ${p.contentExpired} AND NOT ${p.held})`,
    /** Its content row goes: lost, or with the record. */
    contentGoes: `(NOT ${p.held} AND (${p.expired} OR ${p.contentExpired}))`,
  };
}

// Every statement below classifies records `r` (joined to `d`, the default
// cutoffs, and `c`, the org's own when listed) with these expressions; the
// counts of a dry run and the deletions of a real one use the same ones.
const isReceipt = (kinds: string) => `r.kind = ANY(${kinds})`;
const receipt = isReceipt("d.receipt_kinds");
const cutoff = (column: string) =>
  `CASE WHEN c.org_id IS NULL THEN d.${column} ELSE c.${column} END`;
/** Past its class's cutoff: deleted whole unless held. NULL cutoffs (keep forever) never expire. */
const expired = `COALESCE(r.time < CASE WHEN ${receipt} THEN ${cutoff("receipts_before")} ELSE ${cutoff("metadata_before")} END, false)`;
/** Its content past the content cutoff (receipts keep theirs while they exist). */
const contentExpired = `(NOT ${receipt} AND COALESCE(r.time < ${cutoff("content_before")}, false))`;
const covers = `h.org_id = r.org_id AND (h.since IS NULL OR r.time >= h.since)
  AND (h.until IS NULL OR r.time < h.until)
  AND (cardinality(h.principal_ids) = 0 OR r.actor = ANY(h.principal_ids))`;

const prelude = `cut AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb)
      AS c(org_id text, content_before timestamptz, metadata_before timestamptz, receipts_before timestamptz)
  ), dflt AS (
    SELECT $2::timestamptz AS content_before, $3::timestamptz AS metadata_before,
      $4::timestamptz AS receipts_before, $5::text[] AS receipt_kinds
  ), hold AS (
    SELECT * FROM jsonb_to_recordset($6::jsonb)
      AS h(hold_id text, org_id text, principal_ids text[], since timestamptz, until timestamptz)
  )`;

/**
 * Records the positions of deleted records as purged ranges: consecutive
 * positions of a chain form one range (gaps and islands: seq minus its rank
 * is constant along a run), which keeps the hash of its last record (the one
 * whose successor is not next). A rerun never deletes the same records
 * again, so a conflict only guards.
 */
const insertRanges = (source: string, runId: string) => `
  INSERT INTO audit.purged_ranges (chain_id, from_seq, to_seq, last_hash, run_id)
  SELECT chain_id, min(seq), max(seq), min(hash) FILTER (WHERE last), ${runId}
  FROM (SELECT chain_id, seq, hash, seq - row_number() OVER w AS island,
          lead(seq) OVER w IS DISTINCT FROM seq + 1 AS last
        FROM ${source} WINDOW w AS (PARTITION BY chain_id ORDER BY seq)) i
  GROUP BY chain_id, island
  ON CONFLICT (chain_id, from_seq) DO NOTHING`;

/** The statements that count and purge one day's partitions under a policy. */
export class DayPurgeSql {
  readonly records: string;
  readonly contents: string;
  private readonly values: unknown[];
  private readonly held: string;
  private readonly f: ReturnType<typeof fate>;

  /** `holds`: those covering any of the day (others cannot match its records). */
  constructor(policy: PurgePolicy, day: number, holds: readonly Hold[]) {
    this.records = `audit.records_${dayName(day)}`;
    this.contents = `audit.contents_${dayName(day)}`;
    const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
    this.values = [
      JSON.stringify(
        [...policy.orgs].map(([orgId, c]) => ({
          org_id: orgId,
          content_before: iso(c.contentBeforeMs),
          metadata_before: iso(c.metadataBeforeMs),
          receipts_before: iso(c.receiptsBeforeMs),
        })),
      ),
      iso(policy.defaults.contentBeforeMs),
      iso(policy.defaults.metadataBeforeMs),
      iso(policy.defaults.receiptsBeforeMs),
      policy.receiptKinds,
      JSON.stringify(
        holds.map((h) => ({
          hold_id: h.holdId,
          org_id: h.orgId,
          principal_ids: h.principalIds,
          since: iso(h.sinceMs),
          until: iso(h.untilMs),
        })),
      ),
    ];
    this.held = holds.length > 0 ? `EXISTS (SELECT 1 FROM hold h WHERE ${covers})` : "false";
    this.f = fate({ expired, contentExpired, held: this.held });
  }

  private get classified() {
    return `${this.records} r CROSS JOIN dflt d LEFT JOIN cut c ON c.org_id = r.org_id`;
  }

  /** Per org: rows of both partitions and what a purge deletes of them. */
  count(): Sql {
    const f = fate({ expired: "expired", contentExpired: "content_expired", held: "held" });
    return {
      text: `WITH ${prelude}
        SELECT org_id, count(*) AS records, count(*) FILTER (WHERE has_content) AS contents,
          count(*) FILTER (WHERE ${f.doomed} AND NOT receipt) AS metadata,
          count(*) FILTER (WHERE ${f.doomed} AND receipt) AS receipts,
          count(*) FILTER (WHERE ${f.losing} AND has_content) AS content,
          count(*) FILTER (WHERE ${f.doomed} AND has_content) AS doomed_contents
        FROM (
          SELECT r.org_id, ${receipt} AS receipt, ${expired} AS expired,
            ${contentExpired} AS content_expired, ${this.held} AS held,
            x.record_id IS NOT NULL AS has_content
          FROM ${this.classified}
          LEFT JOIN ${this.contents} x ON x.record_id = r.id AND x.time = r.time
          -- Kept apart (not flattened), so each record's fate is computed once, not once per count.
          OFFSET 0
        ) f
        GROUP BY org_id`,
      values: this.values,
    };
  }

  /** Per hold and org: records it covers that would otherwise be deleted or lose content. */
  heldCount(): Sql {
    const unheld = fate({ expired, contentExpired, held: "false" });
    return {
      text: `WITH ${prelude}
        SELECT h.hold_id, r.org_id, count(*) AS records
        FROM ${this.classified}
        LEFT JOIN ${this.contents} x ON x.record_id = r.id AND x.time = r.time
        JOIN hold h ON ${covers}
        WHERE ${unheld.doomed} OR (${unheld.losing} AND x.record_id IS NOT NULL)
        GROUP BY 1, 2`,
      values: this.values,
    };
  }

  /** Deletes the content rows that go in heap blocks [fromBlock, toBlock) of the contents partition. */
  contentBatch(fromBlock: number, toBlock: number): Sql {
    return {
      text: `WITH ${prelude}, batch AS (
          SELECT x.ctid AS tid, r.org_id, ${expired} AS whole
          FROM ${this.contents} x
          CROSS JOIN LATERAL (${this.recordOf("x.record_id", "x.time")}) r
          CROSS JOIN dflt d LEFT JOIN cut c ON c.org_id = r.org_id
          WHERE x.ctid >= $7::tid AND x.ctid < $8::tid AND ${this.f.contentGoes}
        ), gone AS (
          DELETE FROM ${this.contents} x WHERE x.ctid = ANY(ARRAY(SELECT tid FROM batch))
          RETURNING x.ctid AS tid
        )
        SELECT b.org_id, count(*) FILTER (WHERE NOT b.whole) AS content
        FROM gone g JOIN batch b ON b.tid = g.tid GROUP BY b.org_id`,
      values: [...this.values, `(${fromBlock},0)`, `(${toBlock},0)`],
    };
  }

  /**
   * One record by its key, as a subquery a batch joins laterally. The LIMIT
   * keeps the planner from flattening it into a hash join, which would read
   * the whole other partition for every batch; looked up by primary key, a
   * batch costs its own rows only.
   */
  private recordOf(id: string, time: string): string {
    return `SELECT * FROM ${this.records} r WHERE r.id = ${id} AND r.time = ${time} LIMIT 1`;
  }

  /**
   * Deletes the doomed records in heap blocks [fromBlock, toBlock) of the
   * records partition, with their content, and records their positions.
   */
  recordBatch(fromBlock: number, toBlock: number, runId: string): Sql {
    return {
      text: `WITH ${prelude}, batch AS (
          SELECT r.ctid AS tid, r.id, r.time, r.org_id, r.chain_id, r.seq, r.hash, ${receipt} AS receipt
          FROM ${this.classified}
          WHERE r.ctid >= $7::tid AND r.ctid < $8::tid AND ${this.f.doomed}
        ), ranges AS (${insertRanges("batch", "$9")}
        ), contents_gone AS (
          -- Normally none left (contents go first); a late record's, if any. By primary key, as in recordOf.
          DELETE FROM ${this.contents} x WHERE x.ctid = ANY(ARRAY(
            SELECT y.ctid FROM batch b CROSS JOIN LATERAL (
              SELECT ctid FROM ${this.contents} y WHERE y.record_id = b.id AND y.time = b.time LIMIT 1
            ) y))
        ), gone AS (
          DELETE FROM ${this.records} r WHERE r.ctid = ANY(ARRAY(SELECT tid FROM batch))
          RETURNING r.org_id, ${isReceipt("$5::text[]")} AS receipt
        )
        SELECT org_id, count(*) FILTER (WHERE NOT receipt) AS metadata,
          count(*) FILTER (WHERE receipt) AS receipts
        FROM gone GROUP BY org_id`,
      values: [...this.values, `(${fromBlock},0)`, `(${toBlock},0)`, runId],
    };
  }

  /**
   * Purges the contents partition by truncating it: the rows that stay are
   * copied aside and back. Run in one transaction; the last statement
   * answers the counts.
   */
  truncateContents(): Sql[] {
    return [
      sql(`CREATE TEMP TABLE purge_gone (record_id text, time timestamptz, org_id text, whole boolean)
           ON COMMIT DROP`),
      {
        text: `WITH ${prelude}
          INSERT INTO purge_gone
          SELECT r.id, r.time, r.org_id, ${expired}
          FROM ${this.contents} x
          JOIN ${this.records} r ON r.id = x.record_id AND r.time = x.time
          CROSS JOIN dflt d LEFT JOIN cut c ON c.org_id = r.org_id
          WHERE ${this.f.contentGoes}`,
        values: this.values,
      },
      ...this.truncateKeeping(this.contents, "x", "g.record_id = x.record_id AND g.time = x.time"),
      sql(
        `SELECT org_id, count(*) FILTER (WHERE NOT whole) AS content FROM purge_gone GROUP BY org_id`,
      ),
    ];
  }

  /**
   * Purges the records partition by truncating it, the doomed records'
   * positions recorded and any content of theirs deleted first. Run in one
   * transaction; the last statement answers the counts.
   */
  truncateRecords(runId: string): Sql[] {
    return [
      sql(`CREATE TEMP TABLE purge_gone (id text, time timestamptz, org_id text, chain_id text,
             seq bigint, hash text, receipt boolean) ON COMMIT DROP`),
      {
        text: `WITH ${prelude}
          INSERT INTO purge_gone
          SELECT r.id, r.time, r.org_id, r.chain_id, r.seq, r.hash, ${receipt}
          FROM ${this.classified} WHERE ${this.f.doomed}`,
        values: this.values,
      },
      { text: insertRanges("purge_gone", "$1"), values: [runId] },
      sql(
        `DELETE FROM ${this.contents} x USING purge_gone g WHERE x.record_id = g.id AND x.time = g.time`,
      ),
      ...this.truncateKeeping(this.records, "r", "g.id = r.id AND g.time = r.time"),
      sql(`SELECT org_id, count(*) FILTER (WHERE NOT receipt) AS metadata,
             count(*) FILTER (WHERE receipt) AS receipts
           FROM purge_gone GROUP BY org_id`),
    ];
  }

  /**
   * Empties `table` but for the rows not in purge_gone, which are copied
   * aside and back. Only this part holds the partition lock (appends wait):
   * the classification before it may miss a late record stored meanwhile,
   * which is then simply not in purge_gone and stays.
   */
  private truncateKeeping(table: string, alias: string, gone: string): Sql[] {
    return [
      sql(`SELECT pg_advisory_xact_lock(${partitionLock})`),
      sql(`CREATE TEMP TABLE purge_keep (LIKE ${table}) ON COMMIT DROP`),
      sql(`INSERT INTO purge_keep SELECT ${alias}.* FROM ${table} ${alias}
           WHERE NOT EXISTS (SELECT 1 FROM purge_gone g WHERE ${gone})`),
      sql(`TRUNCATE ${table}`),
      sql(`INSERT INTO ${table} SELECT * FROM purge_keep`),
    ];
  }
}

function sql(text: string): Sql {
  return { text, values: [] };
}
