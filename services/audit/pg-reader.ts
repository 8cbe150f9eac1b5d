import type { Pool } from "../kit/pg.js";
import type { ChainedRecord } from "./chain.js";
import type { CheckpointData } from "./checkpoint.js";
import type { PurgedRange } from "./purged-ranges.js";
import { recordSelect, rowToChained, type RecordRow } from "./pg-store.js";

/** What Query may filter on; every field but the org is optional. */
export interface RecordFilter {
  orgId: string;
  sinceMs?: number;
  untilMs?: number;
  actor?: string;
  kinds?: string[];
  provider?: string;
  model?: string;
  workspace?: string;
  repository?: string;
  sessionId?: string;
  toolName?: string;
  status?: string;
  /** Keyset position: records strictly older than this (time, id). */
  before?: { timeMs: number; id: string };
  limit: number;
}

/** A chain's head and its last checkpoint. */
export interface HeadInfo {
  seq: number;
  hash: string;
  checkpointSeq: number;
}

export interface UsageSum {
  actor: string;
  model: string;
  day: string;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Reads the audit log. */
export class PgAuditReader {
  constructor(private readonly pool: Pool) {}

  /** One page, newest first (time, then id). */
  async query(f: RecordFilter): Promise<ChainedRecord[]> {
    const where = ["org_id = $1"];
    const params: unknown[] = [f.orgId];
    const add = (sql: (p: string) => string, value: unknown) => {
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    if (f.sinceMs !== undefined) add((p) => `time >= ${p}`, iso(f.sinceMs));
    if (f.untilMs !== undefined) add((p) => `time < ${p}`, iso(f.untilMs));
    if (f.actor) add((p) => `actor = ${p}`, f.actor);
    // One kind as an equality, so the kind index serves the order as well as the filter.
    if (f.kinds?.length === 1) add((p) => `kind = ${p}`, f.kinds[0]);
    else if (f.kinds?.length) add((p) => `kind = ANY(${p})`, f.kinds);
    if (f.provider) add((p) => `provider = ${p}`, f.provider);
    if (f.model) add((p) => `model = ${p}`, f.model);
    if (f.workspace) add((p) => `workspace = ${p}`, f.workspace);
    if (f.repository) add((p) => `${p} = ANY(repositories)`, f.repository);
    if (f.sessionId) add((p) => `session_id = ${p}`, f.sessionId);
    if (f.toolName) add((p) => `${p} = ANY(tool_names)`, f.toolName);
    if (f.status) add((p) => `status = ${p}`, f.status);
    if (f.before) {
      params.push(iso(f.before.timeMs), f.before.id);
      where.push(`(time, id) < ($${params.length - 1}::timestamptz, $${params.length})`);
    }
    params.push(f.limit);
    const { rows } = await this.pool.query<RecordRow>(
      `SELECT ${recordSelect} FROM audit.records WHERE ${where.join(" AND ")}
       ORDER BY time DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map(rowToChained);
  }

  async get(orgId: string, id: string): Promise<ChainedRecord | undefined> {
    const { rows } = await this.pool.query<RecordRow>(
      `SELECT ${recordSelect} FROM audit.records WHERE org_id = $1 AND id = $2 LIMIT 1`,
      [orgId, id],
    );
    return rows[0] && rowToChained(rows[0]);
  }

  /** Stored content texts of records, by record id; purged ones are absent. */
  async contents(records: readonly ChainedRecord[]): Promise<Map<string, string>> {
    const wanted = records.filter((r) => r.contentSha256 !== "");
    if (wanted.length === 0) return new Map();
    const times = wanted.map((r) => r.timeMs);
    const { rows } = await this.pool.query<{ record_id: string; body: string }>(
      `SELECT record_id, body FROM audit.contents
       WHERE record_id = ANY($1) AND org_id = $2 AND time >= $3 AND time <= $4`,
      [wanted.map((r) => r.id), wanted[0]!.orgId, iso(Math.min(...times)), iso(Math.max(...times))],
    );
    return new Map(rows.map((r) => [r.record_id, r.body]));
  }

  /** A chain's records from position `afterSeq + 1`, in order, at most `limit`. */
  async chainAfter(
    chainId: string,
    afterSeq: number,
    limit: number,
    toSeq = Number.MAX_SAFE_INTEGER,
  ): Promise<ChainedRecord[]> {
    const { rows } = await this.pool.query<RecordRow>(
      `SELECT ${recordSelect} FROM audit.records
       WHERE chain_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4`,
      [chainId, afterSeq, toSeq, limit],
    );
    return rows.map(rowToChained);
  }

  /**
   * A chain's purged ranges with positions in (afterSeq, toSeq], in order,
   * a range that starts at or before afterSeq included.
   */
  async purgedRanges(chainId: string, afterSeq: number, toSeq: number): Promise<PurgedRange[]> {
    // Ranges never overlap, so at most one starts at or before afterSeq and
    // reaches past it: both halves are bounded scans of the primary key.
    const { rows } = await this.pool.query<{
      from_seq: string;
      to_seq: string;
      last_hash: string;
      run_id: string;
    }>(
      `SELECT from_seq, to_seq, last_hash, run_id FROM (
         (SELECT * FROM audit.purged_ranges WHERE chain_id = $1 AND from_seq <= $2
          ORDER BY from_seq DESC LIMIT 1)
         UNION ALL
         SELECT * FROM audit.purged_ranges WHERE chain_id = $1 AND from_seq > $2 AND from_seq <= $3
       ) r WHERE to_seq > $2 ORDER BY from_seq`,
      [chainId, afterSeq, toSeq],
    );
    return rows.map((r) => ({
      chainId,
      fromSeq: Number(r.from_seq),
      toSeq: Number(r.to_seq),
      lastHash: r.last_hash,
      runId: r.run_id,
    }));
  }

  async head(chainId: string): Promise<HeadInfo | undefined> {
    const { rows } = await this.pool.query<{ seq: string; hash: string; checkpoint_seq: string }>(
      "SELECT seq, hash, checkpoint_seq FROM audit.chains WHERE chain_id = $1",
      [chainId],
    );
    const row = rows[0];
    return (
      row && { seq: Number(row.seq), hash: row.hash, checkpointSeq: Number(row.checkpoint_seq) }
    );
  }

  /** Every chain's head position. */
  async heads(): Promise<Map<string, number>> {
    const { rows } = await this.pool.query<{ chain_id: string; seq: string }>(
      "SELECT chain_id, seq FROM audit.chains",
    );
    return new Map(rows.map((r) => [r.chain_id, Number(r.seq)]));
  }

  /** Checkpoints of a chain with positions in [fromSeq, toSeq], in order. */
  async checkpoints(chainId: string, fromSeq: number, toSeq: number): Promise<CheckpointData[]> {
    const { rows } = await this.pool.query<{
      chain_id: string;
      seq: string;
      hash: string;
      prev_checkpoint_hash: string;
      time: Date;
      key_id: string;
      checkpoint_hash: string;
      signature: string;
    }>(
      `SELECT * FROM audit.checkpoints WHERE chain_id = $1 AND seq >= $2 AND seq <= $3
       ORDER BY seq`,
      [chainId, fromSeq, toSeq],
    );
    return rows.map((r) => ({
      chainId: r.chain_id,
      seq: Number(r.seq),
      hash: r.hash,
      prevCheckpointHash: r.prev_checkpoint_hash,
      timeMs: r.time.getTime(),
      keyId: r.key_id,
      checkpointHash: r.checkpoint_hash,
      signature: r.signature,
    }));
  }

  /** The hash of the checkpoint just before position `seq`, or "" when there is none. */
  /** How far back retention may have deleted the chain's content (ms); null when it never has. */
  async contentPurgedBefore(chainId: string): Promise<number | null> {
    const { rows } = await this.pool.query<{ before: Date }>(
      "SELECT before FROM audit.content_purges WHERE chain_id = $1",
      [chainId],
    );
    return rows[0] ? rows[0].before.getTime() : null;
  }

  async checkpointHashBefore(chainId: string, seq: number): Promise<string> {
    const { rows } = await this.pool.query<{ checkpoint_hash: string }>(
      `SELECT checkpoint_hash FROM audit.checkpoints WHERE chain_id = $1 AND seq < $2
       ORDER BY seq DESC LIMIT 1`,
      [chainId, seq],
    );
    return rows[0]?.checkpoint_hash ?? "";
  }

  /** Tokens and calls of LLM responses by principal, model and UTC day. */
  async usage(orgId: string, sinceMs: number, untilMs: number): Promise<UsageSum[]> {
    const { rows } = await this.pool.query<Record<string, string>>(
      `SELECT actor, model, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
         count(*) AS requests, sum(input_tokens) AS input_tokens,
         sum(output_tokens) AS output_tokens, sum(cache_read_tokens) AS cache_read_tokens,
         sum(cache_write_tokens) AS cache_write_tokens, sum(reasoning_tokens) AS reasoning_tokens
       FROM audit.records
       WHERE org_id = $1 AND kind = 'llm.response' AND time >= $2 AND time < $3
       GROUP BY 1, 2, 3 ORDER BY 3, 1, 2`,
      [orgId, iso(sinceMs), iso(untilMs)],
    );
    return rows.map((r) => ({
      actor: r.actor!,
      model: r.model!,
      day: r.day!,
      requests: Number(r.requests),
      inputTokens: Number(r.input_tokens),
      outputTokens: Number(r.output_tokens),
      cacheReadTokens: Number(r.cache_read_tokens),
      cacheWriteTokens: Number(r.cache_write_tokens),
      reasoningTokens: Number(r.reasoning_tokens),
    }));
  }

  async signingKeys(): Promise<{ keyId: string; publicKeyPem: string; createdAt: Date }[]> {
    const { rows } = await this.pool.query<{
      key_id: string;
      public_key_pem: string;
      created_at: Date;
    }>("SELECT key_id, public_key_pem, created_at FROM audit.signing_keys ORDER BY created_at");
    return rows.map((r) => ({
      keyId: r.key_id,
      publicKeyPem: r.public_key_pem,
      createdAt: r.created_at,
    }));
  }
}
