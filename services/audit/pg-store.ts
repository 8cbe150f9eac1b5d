import { inTransaction, type Pool, type PoolClient } from "../kit/pg.js";
import { extendChain, type ChainedRecord } from "./chain.js";
import { signCheckpoint, type CheckpointData, type SigningKey } from "./checkpoint.js";
import type { IncomingRecord } from "./convert.js";
import type { CopyValue, RowLoader } from "./copy.js";
import { dayOf, partitionLock, type Partitions } from "./partitions.js";

/** Columns of audit.records as inserted, in the order recordRow gives their values. */
const recordColumns = [
  "id",
  "time",
  "kind",
  "org_id",
  "actor",
  "actor_kind",
  "action",
  "subject",
  "status",
  "session_id",
  "interception_id",
  "workspace",
  "repositories",
  "user_agent",
  "provider",
  "model",
  "tool_names",
  "input_tokens",
  "output_tokens",
  "cache_read_tokens",
  "cache_write_tokens",
  "reasoning_tokens",
  "latency_ms",
  "attributes",
  "content_sha256",
  "chain_id",
  "seq",
  "prev_hash",
  "hash",
];

/** A record's row, one array literal: built once per record appended. */
function recordRow(r: ChainedRecord): CopyValue[] {
  return [
    r.id,
    new Date(r.timeMs),
    r.kind,
    r.orgId,
    r.actor,
    r.actorKind,
    r.action,
    r.subject,
    r.status,
    r.sessionId,
    r.interceptionId,
    r.workspace,
    r.repositories,
    r.userAgent,
    r.provider,
    r.model,
    r.toolNames,
    r.usage.inputTokens,
    r.usage.outputTokens,
    r.usage.cacheReadTokens,
    r.usage.cacheWriteTokens,
    r.usage.reasoningTokens,
    r.latencyMs,
    r.attributes,
    r.contentSha256,
    r.chainId,
    r.seq,
    r.prevHash,
    r.hash,
  ];
}

/** Postgres's unique_violation: COPY met a record (or content) stored before. */
const uniqueViolation = "23505";

/** The columns a stored record is read back with. */
export const recordSelect = recordColumns.join(", ");

export interface RecordRow {
  id: string;
  time: Date;
  kind: string;
  org_id: string;
  actor: string;
  actor_kind: string;
  action: string;
  subject: string;
  status: string;
  session_id: string;
  interception_id: string;
  workspace: string;
  repositories: string[];
  user_agent: string;
  provider: string;
  model: string;
  tool_names: string[];
  input_tokens: string;
  output_tokens: string;
  cache_read_tokens: string;
  cache_write_tokens: string;
  reasoning_tokens: string;
  latency_ms: string;
  attributes: string;
  content_sha256: string;
  chain_id: string;
  seq: string;
  prev_hash: string;
  hash: string;
}

/** A stored row as the chain sees it. */
export function rowToChained(row: RecordRow): ChainedRecord {
  return {
    id: row.id,
    kind: row.kind,
    timeMs: row.time.getTime(),
    orgId: row.org_id,
    actor: row.actor,
    actorKind: row.actor_kind,
    action: row.action,
    subject: row.subject,
    status: row.status,
    sessionId: row.session_id,
    interceptionId: row.interception_id,
    workspace: row.workspace,
    repositories: row.repositories,
    userAgent: row.user_agent,
    provider: row.provider,
    model: row.model,
    toolNames: row.tool_names,
    usage: {
      inputTokens: Number(row.input_tokens),
      outputTokens: Number(row.output_tokens),
      cacheReadTokens: Number(row.cache_read_tokens),
      cacheWriteTokens: Number(row.cache_write_tokens),
      reasoningTokens: Number(row.reasoning_tokens),
    },
    latencyMs: Number(row.latency_ms),
    attributes: row.attributes,
    contentSha256: row.content_sha256,
    chainId: row.chain_id,
    seq: Number(row.seq),
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

interface HeadRow {
  chain_id: string;
  seq: string;
  hash: string;
  checkpoint_seq: string;
  checkpoint_hash: string;
}

export interface AppendResult {
  stored: number;
  duplicates: number;
  /** Chains that received records, for waking tails and exporters. */
  chains: string[];
}

/** When to sign a checkpoint, and with what. */
export interface CheckpointPolicy {
  key: SigningKey;
  /** A checkpoint once a chain has moved this many records past its last one. */
  every: number;
}

/** Records one Append may carry, and one transaction at most. */
export const maxAppendBatch = 5000;
/**
 * Transactions in flight per process: one holds its chains' locks while the
 * others write their contents and wait on those locks, so that each lock
 * passes to a transaction ready to use it the moment it is released.
 * Measured with one org (docs/benchmarks.md, stop 14): 2 in flight gave
 * 18,300–19,500 records/s, 4 gave 20,000–21,600 in the same sitting.
 */
export const maxWriting = 4;

interface PendingBatch {
  records: readonly IncomingRecord[];
  resolve: (result: AppendResult) => void;
  reject: (err: unknown) => void;
}

/**
 * Writes the audit log. Each org's records form one chain (chain id = org
 * id); a transaction takes its chains' head rows with FOR UPDATE, in id
 * order so two never deadlock, which also serialises positions across
 * replicas in commit order.
 *
 * Batches that arrive while transactions are in flight wait and are then
 * written together, in arrival order, as one transaction (group commit):
 * many writers with small batches cost one lock round, one COPY per table
 * and one commit per group instead of one each, and do not queue on the
 * chain's lock holding a connection each.
 */
export class PgAuditWriter {
  private readonly waiting: PendingBatch[] = [];
  private writing = 0;

  constructor(
    private readonly pool: Pool,
    private readonly partitions: Partitions,
    private readonly checkpoints: CheckpointPolicy,
    /** copyRows on a Postgres server, insertRows on the embedded one. */
    private readonly load: RowLoader,
    private readonly now: () => number = Date.now,
  ) {}

  /** Stores a batch; resolves once it is committed. */
  async append(records: readonly IncomingRecord[]): Promise<AppendResult> {
    if (records.length === 0) return { stored: 0, duplicates: 0, chains: [] };
    await this.partitions.ensure(records.map((r) => dayOf(r.meta.timeMs)));
    return new Promise((resolve, reject) => {
      this.waiting.push({ records, resolve, reject });
      this.startWriting();
    });
  }

  private startWriting(): void {
    while (this.writing < maxWriting && this.waiting.length > 0) {
      let count = this.waiting[0]!.records.length;
      let take = 1;
      while (
        take < this.waiting.length &&
        count + this.waiting[take]!.records.length <= maxAppendBatch
      )
        count += this.waiting[take++]!.records.length;
      const group = this.waiting.splice(0, take);
      this.writing++;
      void this.writeGroup(group).finally(() => {
        this.writing--;
        this.startWriting();
      });
    }
  }

  /** Writes a group; when it fails, each of its batches alone, so one batch's fault fails no other. */
  private async writeGroup(group: PendingBatch[]): Promise<void> {
    try {
      const results = await this.store(group.map((b) => b.records));
      group.forEach((b, i) => b.resolve(results[i]!));
    } catch (err) {
      if (group.length === 1) return group[0]!.reject(err);
      for (const b of group) await this.store([b.records]).then(([r]) => b.resolve(r!), b.reject);
    }
  }

  /**
   * Stores batches in one transaction. Retries are rare (a shipper that
   * lost an ack), so the records are first copied in as if none were
   * stored; only when that meets a stored id is the transaction rolled back
   * and the records filtered against what is stored, so that a retried
   * record never takes a second position in its chain.
   */
  private async store(batches: (readonly IncomingRecord[])[]): Promise<AppendResult[]> {
    const records = batches.flat();
    let stored: Set<IncomingRecord>;
    try {
      stored = await this.appendOnce(records, false);
    } catch (err) {
      if ((err as { code?: string }).code !== uniqueViolation) throw err;
      stored = await this.appendOnce(records, true);
    }
    return batches.map((batch) => {
      const mine = batch.filter((r) => stored.has(r));
      return {
        stored: mine.length,
        duplicates: batch.length - mine.length,
        chains: [...new Set(mine.map((r) => r.meta.orgId))],
      };
    });
  }

  /**
   * Writes the records not stored yet (all, unless `filter`); answers those
   * it stored. From the chains' lock to the commit every round trip to
   * Postgres lengthens the time other writers wait, so the records' rows,
   * any checkpoints, the heads' update and the commit go in one.
   */
  private async appendOnce(
    records: readonly IncomingRecord[],
    filter: boolean,
  ): Promise<Set<IncomingRecord>> {
    const { fresh } = await inTransaction(
      this.pool,
      async (tx) => {
        const fresh = filter ? await this.withoutStored(tx, records) : onlyFirstOfEachId(records);
        // Content first: it needs no position, so the chains' locks are not held while it is written.
        await insertContents(tx, fresh, this.load);
        const chainIds = [...new Set(records.map((r) => r.meta.orgId))].sort();
        const heads = await lockHeads(tx, chainIds);
        const byChain = new Map<string, IncomingRecord[]>();
        for (const r of fresh) {
          const list = byChain.get(r.meta.orgId) ?? [];
          list.push(r);
          byChain.set(r.meta.orgId, list);
        }
        const rows: CopyValue[][] = [];
        for (const [chainId, list] of byChain) {
          const head = heads.get(chainId)!;
          const links = extendChain({ chainId, seq: Number(head.seq), hash: head.hash }, list);
          for (const link of links) rows.push(recordRow(link));
          head.seq = String(links.at(-1)!.seq);
          head.hash = links.at(-1)!.hash;
        }
        const moved = [...byChain.keys()].map((chainId) => heads.get(chainId)!);
        const end = moved
          .filter(
            (head) => Number(head.seq) - Number(head.checkpoint_seq) >= this.checkpoints.every,
          )
          .map((head) => checkpointInsert(tx, head, this.checkpoint(head)));
        if (moved.length > 0) end.push(updateHeads(tx, moved));
        end.push("COMMIT");
        return { fresh, rows, end: end.join("; ") };
      },
      {
        withBegin: `SELECT pg_advisory_xact_lock_shared(${partitionLock})`,
        commit: (tx, { rows, end }) =>
          rows.length > 0
            ? this.load(tx, "audit.records", recordColumns, rows, end)
            : tx.query(end),
      },
    );
    return new Set(fresh);
  }

  /**
   * Signs the head of every chain that has moved since its last checkpoint,
   * so a quiet chain's last records are covered within the checkpoint interval.
   */
  async checkpointMovedChains(): Promise<number> {
    const { rows } = await this.pool.query<{ chain_id: string }>(
      "SELECT chain_id FROM audit.chains WHERE seq > checkpoint_seq",
    );
    for (const { chain_id } of rows) {
      await inTransaction(this.pool, async (tx) => {
        const head = (await lockHeads(tx, [chain_id])).get(chain_id)!;
        if (Number(head.seq) > Number(head.checkpoint_seq))
          await tx.query(
            `${checkpointInsert(tx, head, this.checkpoint(head))}; ${updateHeads(tx, [head])}`,
          );
      });
    }
    return rows.length;
  }

  private checkpoint(head: HeadRow): CheckpointData {
    return signCheckpoint(this.checkpoints.key, {
      chainId: head.chain_id,
      seq: Number(head.seq),
      hash: head.hash,
      prevCheckpointHash: head.checkpoint_hash,
      timeMs: this.now(),
    });
  }

  /** The records of a batch not stored yet (retries send records again), each once. */
  private async withoutStored(
    tx: PoolClient,
    records: readonly IncomingRecord[],
  ): Promise<IncomingRecord[]> {
    const times = records.map((r) => r.meta.timeMs);
    // The time bounds let Postgres look only in the partitions the batch falls in.
    const { rows } = await tx.query<{ id: string; time: Date }>(
      `SELECT id, time FROM audit.records
       WHERE id = ANY($1) AND time >= $2 AND time <= $3`,
      [
        records.map((r) => r.meta.id),
        new Date(Math.min(...times)).toISOString(),
        new Date(Math.max(...times)).toISOString(),
      ],
    );
    return onlyFirstOfEachId(records, new Set(rows.map((r) => `${r.id} ${r.time.getTime()}`)));
  }
}

/**
 * A batch with each record id once (a writer may repeat a record within one
 * batch), leaving out the `seen` ones (keyed "id time").
 */
function onlyFirstOfEachId(
  records: readonly IncomingRecord[],
  seen = new Set<string>(),
): IncomingRecord[] {
  return records.filter((r) => {
    const key = `${r.meta.id} ${r.meta.timeMs}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

async function insertContents(
  tx: PoolClient,
  records: readonly IncomingRecord[],
  load: RowLoader,
): Promise<void> {
  const rows = records
    .filter((r) => r.content !== undefined)
    .map((r) => [r.meta.id, new Date(r.meta.timeMs), r.meta.orgId, r.content!]);
  if (rows.length > 0)
    await load(tx, "audit.contents", ["record_id", "time", "org_id", "body"], rows);
}

/** Locks the chains' heads, in id order, creating those that do not exist yet. */
async function lockHeads(tx: PoolClient, chainIds: string[]): Promise<Map<string, HeadRow>> {
  const select = () =>
    tx.query<HeadRow>(
      `SELECT chain_id, seq, hash, checkpoint_seq, checkpoint_hash FROM audit.chains
       WHERE chain_id = ANY($1) ORDER BY chain_id FOR UPDATE`,
      [chainIds],
    );
  let { rows } = await select();
  if (rows.length < chainIds.length) {
    await tx.query(
      "INSERT INTO audit.chains (chain_id) SELECT unnest($1::text[]) ORDER BY 1 ON CONFLICT DO NOTHING",
      [chainIds],
    );
    ({ rows } = await select());
  }
  return new Map(rows.map((r) => [r.chain_id, r]));
}

/**
 * The statement that stores a checkpoint over a head, which then names it;
 * values as literals, so that it can share the commit's round trip.
 */
function checkpointInsert(tx: PoolClient, head: HeadRow, checkpoint: CheckpointData): string {
  head.checkpoint_seq = String(checkpoint.seq);
  head.checkpoint_hash = checkpoint.checkpointHash;
  const text = [
    checkpoint.chainId,
    checkpoint.hash,
    checkpoint.prevCheckpointHash,
    new Date(checkpoint.timeMs).toISOString(),
    checkpoint.keyId,
    checkpoint.checkpointHash,
    checkpoint.signature,
  ].map((v) => tx.escapeLiteral(v));
  return `INSERT INTO audit.checkpoints
       (chain_id, seq, hash, prev_checkpoint_hash, time, key_id, checkpoint_hash, signature)
     VALUES (${text[0]}, ${BigInt(checkpoint.seq)}, ${text.slice(1).join(", ")})`;
}

/**
 * The statement that moves heads, with its values written in as literals
 * (escaped by the driver) so that it can share a round trip with COMMIT,
 * which a statement with parameters cannot.
 */
function updateHeads(tx: PoolClient, heads: readonly HeadRow[]): string {
  const values = heads.map(
    (h) =>
      `(${tx.escapeLiteral(h.chain_id)}, ${BigInt(h.seq)}, ${tx.escapeLiteral(h.hash)}, ` +
      `${BigInt(h.checkpoint_seq)}, ${tx.escapeLiteral(h.checkpoint_hash)})`,
  );
  return `UPDATE audit.chains AS c SET seq = v.seq, hash = v.hash, checkpoint_seq = v.checkpoint_seq,
      checkpoint_hash = v.checkpoint_hash, updated_at = now()
    FROM (VALUES ${values.join(", ")}) AS v (chain_id, seq, hash, checkpoint_seq, checkpoint_hash)
    WHERE c.chain_id = v.chain_id`;
}
