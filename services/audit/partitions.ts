import { inTransaction, type Pool } from "../kit/pg.js";

/** Milliseconds in a (UTC) day: partitions span one each. */
export const dayMs = 86_400_000;

/** The UTC day (days since 1970-01-01) a time falls on. */
export function dayOf(timeMs: number): number {
  return Math.floor(timeMs / dayMs);
}

/** `YYYYMMDD` of a day, as partition names carry it. */
export function dayName(day: number): string {
  return new Date(day * dayMs).toISOString().slice(0, 10).replaceAll("-", "");
}

/** The day a partition stands for, from its name (`records_YYYYMMDD`); undefined for other names. */
export function partitionDay(name: string): number | undefined {
  const match = /_(\d{4})(\d{2})(\d{2})$/.exec(name);
  return match ? dayOf(Date.UTC(+match[1]!, +match[2]! - 1, +match[3]!)) : undefined;
}

/**
 * Creating a partition locks its parent table exclusively. An append holds
 * this advisory lock shared from its first statement, and partition upkeep
 * takes it exclusively before any table lock, so the two wait for each
 * other instead of deadlocking over the tables' and chains' locks.
 */
export const partitionLock = "hashtext('airlock.audit.partitions')";

/** The partitioned tables, each with one partition per UTC day. */
const partitionedTables = ["records", "contents"] as const;

/**
 * Creates the daily partitions of the audit tables. Each process remembers
 * the days it has seen, so the steady state costs nothing; replicas creating
 * the same day take turns on an advisory lock (see partitionLock).
 */
export class Partitions {
  private readonly known = new Set<number>();

  constructor(private readonly pool: Pool) {}

  /** Makes sure every day in `days` has its partitions. */
  async ensure(days: Iterable<number>): Promise<void> {
    const missing = [...new Set(days)].filter((d) => !this.known.has(d));
    if (missing.length === 0) return;
    await inTransaction(this.pool, async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(${partitionLock})`);
      for (const day of missing) {
        const from = new Date(day * dayMs).toISOString();
        const to = new Date((day + 1) * dayMs).toISOString();
        for (const table of partitionedTables) {
          await tx.query(
            `CREATE TABLE IF NOT EXISTS audit.${table}_${dayName(day)} PARTITION OF audit.${table}
             FOR VALUES FROM ('${from}') TO ('${to}')`,
          );
        }
      }
    });
    for (const day of missing) this.known.add(day);
  }

  /** Today's partitions and those of the days ahead, so inserts never wait on DDL. */
  ensureAhead(nowMs: number, daysAhead: number): Promise<void> {
    const today = dayOf(nowMs);
    return this.ensure(Array.from({ length: daysAhead + 1 }, (_, i) => today + i));
  }
}
