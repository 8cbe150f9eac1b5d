import { dayMs } from "./partitions.js";
import { latestCutoffMs, type Hold, type PurgePolicy } from "./purge-policy.js";

/** What a purge deletes of one org. */
export interface OrgCounts {
  /** Records that lose their content and keep their metadata. */
  content: number;
  /** Records (not receipts) deleted whole. */
  metadata: number;
  /** Receipts deleted. */
  receipts: number;
}

/** Expired records of an org that a hold keeps. */
export interface HeldCount {
  holdId: string;
  orgId: string;
  records: number;
}

/** One day's partitions as the count finds them, and what of them a purge deletes. */
export interface DayCount {
  /** Rows of the day's records partition, and how many are deleted whole. */
  records: number;
  doomedRecords: number;
  /** Rows of its contents partition, and how many go (content lost, or with their record). */
  contents: number;
  doomedContents: number;
  orgs: Map<string, OrgCounts>;
  held: HeldCount[];
}

/** How one partition of a day is purged. */
export type PurgeMethod = "keep" | "truncate" | "batches";

/**
 * Truncating a partition and copying its survivors back costs about what
 * the survivors cost to copy; deleting costs per deleted row (and leaves dead
 * rows for vacuum). Past half, the survivors are the smaller side.
 */
export function purgeMethod(rows: number, doomed: number): PurgeMethod {
  if (doomed === 0) return "keep";
  return doomed * 2 >= rows ? "truncate" : "batches";
}

/** How a day's contents and records partitions are purged. */
export function planDay(count: DayCount): { contents: PurgeMethod; records: PurgeMethod } {
  return {
    contents: purgeMethod(count.contents, count.doomedContents),
    records: purgeMethod(count.records, count.doomedRecords),
  };
}

/** The days, of those with partitions, that begin before some cutoff; oldest first. */
export function daysToExamine(days: Iterable<number>, policy: PurgePolicy): number[] {
  const latest = latestCutoffMs(policy);
  if (latest === undefined) return [];
  return [...new Set(days)].filter((d) => d * dayMs < latest).sort((a, b) => a - b);
}

/** The holds that cover any time of a day. */
export function holdsOn(day: number, holds: readonly Hold[]): Hold[] {
  const start = day * dayMs;
  const end = start + dayMs;
  return holds.filter(
    (h) =>
      (h.sinceMs === undefined || h.sinceMs < end) &&
      (h.untilMs === undefined || h.untilMs > start),
  );
}

/** One org's share of a purge's answer. */
export interface OrgOutcome extends OrgCounts {
  orgId: string;
  held: { holdId: string; records: number }[];
}

/** What a purge did (or, dry, would do). */
export interface PurgeOutcome {
  /** Orgs with anything purged or held, by id. */
  orgs: OrgOutcome[];
  partitionsTruncated: number;
}

/** Adds up a purge's counts, day by day and batch by batch. */
export class PurgeTally {
  private readonly orgs = new Map<string, OrgCounts>();
  private readonly held = new Map<string, Map<string, number>>();
  private truncatedDays = 0;

  add(orgId: string, counts: Partial<OrgCounts>): void {
    const o = this.orgs.get(orgId) ?? { content: 0, metadata: 0, receipts: 0 };
    o.content += counts.content ?? 0;
    o.metadata += counts.metadata ?? 0;
    o.receipts += counts.receipts ?? 0;
    this.orgs.set(orgId, o);
  }

  addHeld({ holdId, orgId, records }: HeldCount): void {
    const byHold = this.held.get(orgId) ?? new Map<string, number>();
    byHold.set(holdId, (byHold.get(holdId) ?? 0) + records);
    this.held.set(orgId, byHold);
  }

  truncated(): void {
    this.truncatedDays++;
  }

  outcome(): PurgeOutcome {
    const ids = new Set([...this.orgs.keys(), ...this.held.keys()]);
    const orgs = [...ids]
      .sort()
      .map((orgId): OrgOutcome => {
        const counts = this.orgs.get(orgId) ?? { content: 0, metadata: 0, receipts: 0 };
        const held = [...(this.held.get(orgId) ?? [])]
          .filter(([, records]) => records > 0)
          .map(([holdId, records]) => ({ holdId, records }))
          .sort((a, b) => (a.holdId < b.holdId ? -1 : a.holdId > b.holdId ? 1 : 0));
        return { orgId, ...counts, held };
      })
      .filter((o) => o.content + o.metadata + o.receipts > 0 || o.held.length > 0);
    return { orgs, partitionsTruncated: this.truncatedDays };
  }
}
