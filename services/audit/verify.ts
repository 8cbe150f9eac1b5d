import type { KeyObject } from "node:crypto";
import { sha256Hex } from "./canonical.js";
import { metaDigest, recordHash, type ChainedRecord } from "./chain.js";
import { checkpointProblem, type CheckpointData } from "./checkpoint.js";

export type ProblemCode =
  | "hash_mismatch"
  | "content_mismatch"
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
  problem?: Problem;
}

/**
 * Checks a stretch of one chain, fed in position order, without holding it
 * in memory: each record's hash is recomputed from its metadata, its stored
 * content (when not purged) must match its digest, each record must name its
 * predecessor's hash, positions must follow each other with no gap, and each
 * checkpoint must be signed by a known key, link to the checkpoint before it
 * and name the hash the record at its position has. The service and the
 * offline `airlock audit verify --file` run this same code.
 */
export class ChainVerifier {
  private expectedSeq: number;
  private prevHash: string | undefined;
  private prevCheckpointHash: string | undefined;
  private readonly pendingCheckpoints = new Map<number, CheckpointData>();
  /** Hashes of recent records, for checkpoints that arrive after their record. */
  private readonly lastHashes = new Map<number, string>();
  private recordsChecked = 0;
  private checkpointsChecked = 0;
  private problem: Problem | undefined;

  /**
   * `fromSeq` is the first position expected; `prevHash` the hash of the
   * record before it when known (undefined: trust the first record's link,
   * as for a chain whose older records retention removed);
   * `prevCheckpointHash` likewise for the checkpoint before the range.
   */
  constructor(
    private readonly publicKeys: ReadonlyMap<string, KeyObject>,
    start: { fromSeq: number; prevHash?: string; prevCheckpointHash?: string },
  ) {
    this.expectedSeq = start.fromSeq;
    this.prevHash = start.prevHash;
    this.prevCheckpointHash = start.prevCheckpointHash;
  }

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
        `record ${r.id} at ${r.seq} does not name the hash of the record before it`,
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
    this.expectedSeq = r.seq + 1;
    this.lastHashes.set(r.seq, r.hash);
    this.settleCheckpoints();
  }

  /** Compares pending checkpoints with the hashes of records seen at their positions. */
  private settleCheckpoints(): void {
    for (const [seq, c] of this.pendingCheckpoints) {
      const hash = this.lastHashes.get(seq);
      if (hash === undefined) continue;
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
      ...(this.problem && { problem: this.problem }),
    };
  }

  private fail(code: ProblemCode, seq: number, recordId: string, message: string, toSeq = seq) {
    this.problem = { code, seq, toSeq, recordId, message };
  }
}
