import type { Record } from "../../../gen/airlock/audit/v1/audit_pb.js";

/**
 * How far a sink has got: for each chain (one per org, chain id = org id),
 * the `seq` of the last record it delivered. A chain that is absent has had
 * nothing delivered yet.
 */
export type ExportCursor = { readonly [chainId: string]: number };

/** Where exporters read the audit log. The audit store implements it. */
export interface ExportSource {
  /**
   * Up to `limit` records after `cursor`: of every chain, the records whose
   * `seq` is above the cursor's (all of them for a chain the cursor lacks),
   * lowest `seq` first and none skipped, so a chain's records come as a
   * prefix of what is left of it. How the limit is shared among chains is
   * the source's choice. Content is loaded only when `content` is true.
   */
  readAfter(cursor: ExportCursor, limit: number, options: { content: boolean }): Promise<Record[]>;
  /** Every chain's last `seq`: where a sink starting "now" begins, and how lag is measured. */
  heads(): Promise<ExportCursor>;
}

/** Where each sink's cursor is kept between runs. */
export interface ExportCursors {
  /** The sink's saved cursor; undefined when it never delivered anything. */
  load(sink: string): Promise<ExportCursor | undefined>;
  save(sink: string, cursor: ExportCursor): Promise<void>;
}

/** The records of `records` that `cursor` has not passed yet. */
export function after(cursor: ExportCursor, records: readonly Record[]): Record[] {
  return records.filter((r) => Number(r.seq) > (cursor[r.chainId] ?? 0));
}

/** The cursor once `records` are delivered. */
export function advance(cursor: ExportCursor, records: readonly Record[]): ExportCursor {
  const next: { [chainId: string]: number } = { ...cursor };
  for (const r of records) next[r.chainId] = Math.max(next[r.chainId] ?? 0, Number(r.seq));
  return next;
}

/** Records stored but not yet delivered, summed over chains. */
export function lagOf(cursor: ExportCursor, heads: ExportCursor): number {
  let lag = 0;
  for (const [chain, head] of Object.entries(heads))
    lag += Math.max(0, head - (cursor[chain] ?? 0));
  return lag;
}
