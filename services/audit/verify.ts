import type { KeyObject } from "node:crypto";
import { sha256Hex } from "./canonical.js";
import { metaDigest, recordHash, type ChainedRecord } from "./chain.js";
import { checkpointProblem, type CheckpointData } from "./checkpoint.js";
import type { PurgedRange } from "./purged-ranges.js";

export type ProblemCode =
  | "hash_mismatch"
  | "content_mismatch"
  | "content_missing"
  | "link_broken"
  | "missing_records"
  | "checkpoint_mismatch"
  | "bad_signature"
  | "unknown_key"
  | "head_missing";

/** The first thing found wrong in a chain. */
export interface Problem {
  code: ProblemCode;
  seq: number;
  /** For missing records: the last missing position. */
  toSeq: number;
  recordId: string;
  message: string;
}

export interface VerifyResult {
  ok: boolean;
  recordsChecked: number;
  checkpointsChecked: number;
  /** Positions passed over because retention deleted them (purged ranges). */
  recordsPurged: number;
  problem?: Problem;
}

/**
 * Checks a stretch of one chain, fed in position order, without holding it
 * in memory: each record's hash is recomputed from its metadata, its stored
 * content (when not purged) must match its digest, each record must name its
 * predecessor's hash, positions must follow each other with no gap, and each
 * checkpoint must be signed by a known key, link to the checkpoint before it
 * and name the hash the record at its position has. A gap is accepted only
 * where purged ranges, fed in position order before the records after them,
 * cover it exactly; the record after a range must name the range's last
 * hash. The service and the offline `airlock audit verify --file` run this
 * same code.
 */
export class ChainVerifier {
  private expectedSeq: number;
  private prevHash: string | undefined;
  private prevCheckpointHash: string | undefined;
  private readonly pendingCheckpoints = new Map<number, CheckpointData>();
  /** Hashes of recent records, for checkpoints that arrive after their record. */
  private readonly lastHashes = new Map<number, string>();
  /** Purged positions whose hash nobody knows any more (all but each range's last). */
  private readonly purgedSpans: { from: number; to: number }[] = [];
  /** Whether the position before `expectedSeq` was passed as a purged range. */
  private afterRange = false;
  private started = false;
  private recordsChecked = 0;
  private checkpointsChecked = 0;
  private recordsPurged = 0;
  private problem: Problem | undefined;

  /**
   * `fromSeq` is the first position expected; `prevHash` the hash of the
   * record before it when known (undefined: trust the first record's link,
   * as for a chain whose older records retention removed);
   * `prevCheckpointHash` likewise for the checkpoint before the range.
   * `contentPurgedBeforeMs`, where content is at hand (the service, not an
   * export): how far back retention may have deleted content (null: never);
   * a record at or after it without its content lost it to someone else.
   */
  constructor(
    private readonly publicKeys: ReadonlyMap<string, KeyObject>,
    start: {
      fromSeq: number;
      prevHash?: string;
      prevCheckpointHash?: string;
      contentPurgedBeforeMs?: number | null;
    },
  ) {
    this.expectedSeq = start.fromSeq;
    this.prevHash = start.prevHash;
    this.prevCheckpointHash = start.prevCheckpointHash;
    this.contentPurgedBeforeMs = start.contentPurgedBeforeMs;
  }

  private readonly contentPurgedBeforeMs: number | null | undefined;

  get failed(): boolean {
    return this.problem !== undefined;
  }

  /** Checkpoints may come before or after the record they sign, in position order among themselves. */
  checkpoint(c: CheckpointData): void {
    if (this.problem) return;
    const keyProblem = checkpointProblem(c, this.publicKeys);
    if (keyProblem) {
      return this.fail(
        keyProblem,
        c.seq,
        "",
        keyProblem === "unknown_key"
          ? `checkpoint at ${c.seq} is signed by key ${c.keyId}, which is not among the trusted keys`
          : `checkpoint at ${c.seq} has a signature that does not match its statement`,
      );
    }
    if (this.prevCheckpointHash !== undefined && c.prevCheckpointHash !== this.prevCheckpointHash) {
      return this.fail(
        "checkpoint_mismatch",
        c.seq,
        "",
        `checkpoint at ${c.seq} does not name the checkpoint before it`,
      );
    }
    this.prevCheckpointHash = c.checkpointHash;
    this.pendingCheckpoints.set(c.seq, c);
    this.settleCheckpoints();
  }

  /**
   * A stretch retention deleted. It must start where the chain is expected
   * to go on (a first range may start before the verified stretch does);
   * the chain then goes on after it from its last hash.
   */
  purged(range: PurgedRange): void {
    if (this.problem) return;
    const { fromSeq, toSeq } = range;
    if (this.started && fromSeq < this.expectedSeq) {
      return this.fail(
        "link_broken",
        fromSeq,
        "",
        `purged range ${fromSeq}..${toSeq} overlaps positions already checked`,
      );
    }
    if (toSeq < this.expectedSeq) {
      // Wholly before the verified stretch; one ending just before it names
      // the hash the stretch's first record links to.
      if (toSeq === this.expectedSeq - 1) this.prevHash ??= range.lastHash;
      return;
    }
    if (fromSeq > this.expectedSeq) {
      return this.fail(
        "missing_records",
        this.expectedSeq,
        "",
        `records ${this.expectedSeq}..${fromSeq - 1} are missing`,
        fromSeq - 1,
      );
    }
    this.recordsPurged += toSeq - this.expectedSeq + 1;
    if (toSeq > this.expectedSeq) this.purgedSpans.push({ from: this.expectedSeq, to: toSeq - 1 });
    this.prevHash = range.lastHash;
    this.afterRange = true;
    this.started = true;
    this.expectedSeq = toSeq + 1;
    this.lastHashes.set(toSeq, range.lastHash);
    this.settleCheckpoints();
  }

  /** `content` is the stored content text, or undefined when purged or never stored. */
  record(r: ChainedRecord, content: string | undefined): void {
    if (this.problem) return;
    if (r.seq > this.expectedSeq) {
      return this.fail(
        "missing_records",
        this.expectedSeq,
        "",
        `records ${this.expectedSeq}..${r.seq - 1} are missing`,
        r.seq - 1,
      );
    }
    if (r.seq < this.expectedSeq) {
      return this.fail("link_broken", r.seq, r.id, `record ${r.id} repeats position ${r.seq}`);
    }
    if (this.prevHash !== undefined && r.prevHash !== this.prevHash) {
      return this.fail(
        "link_broken",
        r.seq,
        r.id,
        this.afterRange
          ? `record ${r.id} at ${r.seq} does not name the last hash of the purged range before it`
          : `record ${r.id} at ${r.seq} does not name the hash of the record before it`,
      );
    }
    if (recordHash(r, metaDigest(r)) !== r.hash) {
      return this.fail(
        "hash_mismatch",
        r.seq,
        r.id,
        `record ${r.id} at ${r.seq} was changed after it was stored`,
      );
    }
    if (
      content === undefined &&
      r.contentSha256 !== "" &&
      this.contentPurgedBeforeMs !== undefined &&
      (this.contentPurgedBeforeMs === null || r.timeMs >= this.contentPurgedBeforeMs)
    ) {
      return this.fail(
        "content_missing",
        r.seq,
        r.id,
        `the content of record ${r.id} at ${r.seq} is gone, but no retention run has purged content that recent`,
      );
    }
    if (content !== undefined && sha256Hex(content) !== r.contentSha256) {
      return this.fail(
        "content_mismatch",
        r.seq,
        r.id,
        `the content of record ${r.id} at ${r.seq} was changed after it was stored`,
      );
    }
    this.recordsChecked++;
    this.prevHash = r.hash;
    this.afterRange = false;
    this.started = true;
    this.expectedSeq = r.seq + 1;
    this.lastHashes.set(r.seq, r.hash);
    this.settleCheckpoints();
  }

  /** Compares pending checkpoints with the hashes of records seen at their positions. */
  private settleCheckpoints(): void {
    for (const [seq, c] of this.pendingCheckpoints) {
      const hash = this.lastHashes.get(seq);
      if (hash === undefined) {
        // Inside a purged range the signed record is gone: the checkpoint's
        // signature and link were checked, there is nothing to compare.
        if (this.purgedSpans.some((s) => s.from <= seq && seq <= s.to)) {
          this.pendingCheckpoints.delete(seq);
          this.checkpointsChecked++;
        }
        continue;
      }
      this.pendingCheckpoints.delete(seq);
      if (hash !== c.hash) {
        return this.fail(
          "checkpoint_mismatch",
          seq,
          "",
          `the record at ${seq} is not the one its signed checkpoint names`,
        );
      }
      this.checkpointsChecked++;
    }
    // Hashes are only needed until a checkpoint at their position arrives; checkpoints
    // arrive at most one page behind the records, so keep a bounded window.
    if (this.lastHashes.size > 20_000) {
      const cut = this.expectedSeq - 10_000;
      for (const seq of this.lastHashes.keys()) if (seq < cut) this.lastHashes.delete(seq);
    }
    if (this.purgedSpans.length > 1000) {
      const cut = this.expectedSeq - 10_000;
      const kept = this.purgedSpans.filter((s) => s.to >= cut);
      this.purgedSpans.splice(0, this.purgedSpans.length, ...kept);
    }
  }

  /** The verdict; `headSeq` is where the chain ends (records after the last seen are missing). */
  finish(headSeq: number | undefined): VerifyResult {
    if (!this.problem && headSeq !== undefined && this.expectedSeq <= headSeq) {
      this.fail(
        "head_missing",
        this.expectedSeq,
        "",
        `records ${this.expectedSeq}..${headSeq} are missing: the chain's head is at ${headSeq}`,
        headSeq,
      );
    }
    if (!this.problem && this.pendingCheckpoints.size > 0) {
      const seq = Math.min(...this.pendingCheckpoints.keys());
      this.fail(
        "missing_records",
        seq,
        "",
        `a signed checkpoint names position ${seq}, but no record there was checked`,
        seq,
      );
    }
    return {
      ok: !this.problem,
      recordsChecked: this.recordsChecked,
      checkpointsChecked: this.checkpointsChecked,
      recordsPurged: this.recordsPurged,
      ...(this.problem && { problem: this.problem }),
    };
  }

  private fail(code: ProblemCode, seq: number, recordId: string, message: string, toSeq = seq) {
    this.problem = { code, seq, toSeq, recordId, message };
  }
}
