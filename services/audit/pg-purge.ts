import { inTransaction, type Pool } from "../kit/pg.js";
import { partitionDay } from "./partitions.js";
import {
  daysToExamine,
  holdsOn,
  planDay,
  PurgeTally,
  type DayCount,
  type OrgCounts,
  type PurgeOutcome,
} from "./purge-plan.js";
import type { PurgePolicy } from "./purge-policy.js";
import { DayPurgeSql, type Sql } from "./purge-sql.js";

/**
 * Purges take turns, statement by statement: a second call (a retried run)
 * then finds only what the first has not deleted yet, and no deletion is
 * counted twice.
 */
const purgeLock = "hashtext('airlock.audit.purge')";

/**
 * Carries out a retention run day by day. Each daily partition with
 * anything expired is counted first; one whose rows are mostly deleted is
 * truncated with its few survivors copied back, any other is purged in
 * bounded batches, each its own transaction. Contents go before records, so
 * no content ever outlives its record. Every step commits on its own, so a
 * crash leaves a consistent log and a rerun finishes the job; the counts are
 * what this call deleted.
 */
export class PgAuditPurger {
  constructor(
    private readonly pool: Pool,
    /** About how many rows a batch deletes at most. */
    private readonly batchSize: number,
  ) {}

  async purge(policy: PurgePolicy): Promise<PurgeOutcome> {
    const tally = new PurgeTally();
    if (!policy.dryRun) await this.markContentPurges(policy);
    for (const day of daysToExamine(await this.partitionDays(), policy)) {
      const holds = holdsOn(day, policy.holds);
      const sql = new DayPurgeSql(policy, day, holds);
      const count = await this.count(sql, holds.length > 0);
      for (const held of count.held) tally.addHeld(held);
      const plan = planDay(count);
      if (plan.contents === "truncate" || plan.records === "truncate") tally.truncated();
      if (policy.dryRun) {
        for (const [orgId, counts] of count.orgs) tally.add(orgId, counts);
        continue;
      }
      const { pool, batchSize } = this;
      if (plan.contents === "truncate")
        addCounts(tally, await truncatePartition(pool, sql.truncateContents()));
      else if (plan.contents === "batches")
        addCounts(
          tally,
          await purgeInBatches(pool, sql.contents, count.contents, batchSize, (a, b) =>
            sql.contentBatch(a, b),
          ),
        );
      if (plan.records === "truncate")
        addCounts(tally, await truncatePartition(pool, sql.truncateRecords(policy.runId)));
      else if (plan.records === "batches")
        addCounts(
          tally,
          await purgeInBatches(pool, sql.records, count.records, batchSize, (a, b) =>
            sql.recordBatch(a, b, policy.runId),
          ),
        );
    }
    return tally.outcome();
  }

  /**
   * Moves each chain's content mark (see 005_content_purges.sql) to its org's
   * content cutoff, before any content goes; a mark only ever grows.
   */
  private async markContentPurges(policy: PurgePolicy): Promise<void> {
    const listed = [...policy.orgs];
    const at = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
    await this.pool.query(
      `INSERT INTO audit.content_purges (chain_id, before, run_id)
       SELECT c.chain_id, CASE WHEN o.org_id IS NULL THEN $3::timestamptz ELSE o.before END, $4
       FROM audit.chains c
       LEFT JOIN unnest($1::text[], $2::timestamptz[]) AS o (org_id, before) ON o.org_id = c.chain_id
       WHERE CASE WHEN o.org_id IS NULL THEN $3::timestamptz ELSE o.before END IS NOT NULL
       ON CONFLICT (chain_id) DO UPDATE
         SET before = EXCLUDED.before, run_id = EXCLUDED.run_id, updated_at = now()
         WHERE audit.content_purges.before < EXCLUDED.before`,
      [
        listed.map(([orgId]) => orgId),
        listed.map(([, c]) => at(c.contentBeforeMs)),
        at(policy.defaults.contentBeforeMs),
        policy.runId,
      ],
    );
  }

  /** Days with both partitions (Partitions creates them together). */
  private async partitionDays(): Promise<number[]> {
    const { rows } = await this.pool.query<{ parent: string; name: string }>(
      `SELECT p.relname AS parent, c.relname AS name
       FROM pg_inherits i
       JOIN pg_class c ON c.oid = i.inhrelid
       JOIN pg_class p ON p.oid = i.inhparent
       JOIN pg_namespace n ON n.oid = p.relnamespace
       WHERE n.nspname = 'audit' AND p.relname IN ('records', 'contents')`,
    );
    const days = (parent: string) =>
      new Set(rows.filter((r) => r.parent === parent).map((r) => partitionDay(r.name)));
    const contents = days("contents");
    return [...days("records")].filter((d): d is number => d !== undefined && contents.has(d));
  }

  private async count(sql: DayPurgeSql, withHolds: boolean): Promise<DayCount> {
    const { rows } = await this.pool.query<Record<string, string>>(sql.count());
    const count: DayCount = {
      records: 0,
      doomedRecords: 0,
      contents: 0,
      doomedContents: 0,
      orgs: new Map(),
      held: [],
    };
    for (const r of rows) {
      const org = { content: +r.content!, metadata: +r.metadata!, receipts: +r.receipts! };
      count.records += +r.records!;
      count.contents += +r.contents!;
      count.doomedRecords += org.metadata + org.receipts;
      count.doomedContents += org.content + +r.doomed_contents!;
      if (org.content + org.metadata + org.receipts > 0) count.orgs.set(r.org_id!, org);
    }
    if (withHolds) {
      const held = await this.pool.query<{ hold_id: string; org_id: string; records: string }>(
        sql.heldCount(),
      );
      count.held = held.rows.map((h) => ({
        holdId: h.hold_id,
        orgId: h.org_id,
        records: Number(h.records),
      }));
    }
    return count;
  }
}

/** What a purge step deleted, per org (the columns of OrgCounts it concerns). */
export type CountRow = { org_id: string } & Partial<Record<keyof OrgCounts, string>>;

/**
 * Runs one truncation (DayPurgeSql's truncate statements, which take the
 * partition lock for the truncation itself) in a transaction.
 */
export function truncatePartition(pool: Pool, statements: Sql[]): Promise<CountRow[]> {
  return inTransaction(pool, async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(${purgeLock})`);
    let last: CountRow[] = [];
    for (const statement of statements) last = (await tx.query<CountRow>(statement)).rows;
    return last;
  });
}

/**
 * Runs `batch` over a partition's heap a range of blocks at a time, each
 * range holding about `batchSize` of its `rows`, each in its own
 * transaction. Batches by block range are read by a TID range scan: each
 * costs its own rows only, where batches of "the next N expired rows" would
 * each wade again through the rows earlier batches deleted. Blocks added
 * after the start (late records) wait for the next run.
 */
export async function purgeInBatches(
  pool: Pool,
  table: string,
  rows: number,
  batchSize: number,
  batch: (fromBlock: number, toBlock: number) => Sql,
): Promise<CountRow[]> {
  const size = await pool.query<{ blocks: string }>(
    "SELECT pg_relation_size($1::regclass) / current_setting('block_size')::int AS blocks",
    [table],
  );
  const blocks = Number(size.rows[0]!.blocks);
  const step = Math.max(1, Math.floor((batchSize * blocks) / Math.max(rows, 1)));
  const counted: CountRow[] = [];
  for (let from = 0; from < blocks; from += step) {
    const deleted = await inTransaction(pool, async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(${purgeLock})`);
      return (await tx.query<CountRow>(batch(from, from + step))).rows;
    });
    counted.push(...deleted);
  }
  return counted;
}

function addCounts(tally: PurgeTally, rows: CountRow[]): void {
  for (const r of rows) {
    tally.add(r.org_id, {
      content: Number(r.content ?? 0),
      metadata: Number(r.metadata ?? 0),
      receipts: Number(r.receipts ?? 0),
    });
  }
}
