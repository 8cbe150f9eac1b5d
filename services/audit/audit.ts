import type { KeyObject } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { RecordSchema, type Record as AuditRecord } from "../../gen/airlock/audit/v1/audit_pb.js";
import { PrincipalKind } from "../../gen/airlock/identity/v1/identity_pb.js";
import type { CheckRequest, CheckResponse } from "../../gen/airlock/policy/v1/policy_pb.js";
import type { Caller, PrincipalCaller } from "../kit/caller.js";
import { denied, invalid, unauthenticated } from "../kit/errors.js";
import { uuidv7 } from "../kit/ids.js";
import type { ChainedRecord } from "./chain.js";
import type { CheckpointData } from "./checkpoint.js";
import { incomingRecord, recordToProto } from "./convert.js";
import type { AppendNotifier } from "./notifier.js";
import { decodeRecord } from "./record-wire.js";
import type { PgAuditReader, RecordFilter } from "./pg-reader.js";
import { maxAppendBatch, type AppendResult, type PgAuditWriter } from "./pg-store.js";
import { inChainOrder, type PurgedRange } from "./purged-ranges.js";
import { ChainVerifier, type VerifyResult } from "./verify.js";

const verifyPage = 2000;

export interface AuditDeps {
  writer: PgAuditWriter;
  reader: PgAuditReader;
  check(
    request: Pick<CheckRequest, "subject" | "orgId" | "object" | "action">,
  ): Promise<CheckResponse>;
  notifier: AppendNotifier;
  publicKeys(): Promise<ReadonlyMap<string, KeyObject>>;
  now?: () => number;
}

/** Who may read an org's log, and whether its content. */
export interface ReadGrant {
  caller: PrincipalCaller;
  orgId: string;
  content: boolean;
}

/**
 * The audit log's rules: only services append; only principals of an org
 * with `read` on `audit` read it; content needs `read` on `audit:content`,
 * and every read of content is itself recorded before it is answered.
 */
export class Audit {
  private readonly now: () => number;

  constructor(private readonly deps: AuditDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Stores records sent in their wire form (an encoded Record each). */
  async append(caller: Caller, records: readonly Uint8Array[]): Promise<AppendResult> {
    if (caller.kind !== "service") {
      throw caller.kind === "anonymous"
        ? unauthenticated()
        : denied("only Airlock's services append to the audit log");
    }
    if (records.length > maxAppendBatch)
      throw invalid(`records: at most ${maxAppendBatch} per call, got ${records.length}`);
    return this.store(records.map((bytes, i) => incomingRecord(decodeRecord(bytes, i), i)));
  }

  /** Checks that the caller may read the org's log (and its content, when asked). */
  async grant(caller: Caller, requestedOrg: string, content: boolean): Promise<ReadGrant> {
    if (caller.kind === "anonymous") throw unauthenticated();
    if (caller.kind === "service")
      throw denied("the audit log is read by principals; call with a user or agent token");
    const ownOrg = caller.principal.org!.id;
    const orgId = requestedOrg || ownOrg;
    if (orgId !== ownOrg) throw denied("a principal reads only its own org's audit log");
    await this.require(caller, orgId, "audit");
    if (content) await this.require(caller, orgId, "audit:content");
    return { caller, orgId, content };
  }

  async query(grant: ReadGrant, filter: Omit<RecordFilter, "orgId">): Promise<AuditRecord[]> {
    const records = await this.deps.reader.query({ ...filter, orgId: grant.orgId });
    return this.answer(grant, records, "Query");
  }

  async get(grant: ReadGrant, id: string): Promise<AuditRecord | undefined> {
    const record = await this.deps.reader.get(grant.orgId, id);
    return record && (await this.answer(grant, [record], "Get"))[0];
  }

  /**
   * Recomputes the org's chain over [fromSeq, toSeq] (0: first stored / head),
   * page by page, with the checkpoints and purged ranges in that range.
   */
  async verify(
    orgId: string,
    fromSeq: number,
    toSeq: number,
  ): Promise<VerifyResult & { headSeq: number }> {
    const { reader } = this.deps;
    const head = await reader.head(orgId);
    const headSeq = head?.seq ?? 0;
    const last = toSeq > 0 ? Math.min(toSeq, headSeq) : headSeq;
    const first = fromSeq > 0 ? fromSeq : 1;
    const before = first > 1 ? await reader.chainAfter(orgId, first - 2, 1, first - 1) : [];
    const verifier = new ChainVerifier(await this.deps.publicKeys(), {
      fromSeq: first,
      prevHash: before[0]?.hash ?? (first === 1 ? "" : undefined),
      prevCheckpointHash: await reader.checkpointHashBefore(orgId, first),
      contentPurgedBeforeMs: await reader.contentPurgedBefore(orgId),
    });
    const checkpoints = await reader.checkpoints(orgId, first, last);
    let next = 0;
    const checkpointsThrough = (seq: number) => {
      while (next < checkpoints.length && checkpoints[next]!.seq <= seq)
        verifier.checkpoint(checkpoints[next++]!);
    };
    for (let after = first - 1; after < last && !verifier.failed;) {
      const page = await reader.chainAfter(orgId, after, verifyPage, last);
      // A short page reaches `last`: the ranges up to it (a purged head) come with it.
      const end = page.length === verifyPage ? page.at(-1)!.seq : last;
      // The first page also asks for a range ending just before `first`: its
      // last hash is what the first record links to.
      const ranges = await reader.purgedRanges(orgId, after === first - 1 ? after - 1 : after, end);
      const contents = await reader.contents(page);
      for (const item of inChainOrder(
        page,
        ranges,
        (r) => r.seq,
        (p) => p.fromSeq,
      )) {
        if ("record" in item) {
          checkpointsThrough(item.record.seq);
          verifier.record(item.record, contents.get(item.record.id));
        } else {
          checkpointsThrough(item.purged.toSeq);
          verifier.purged(item.purged);
        }
      }
      after = end;
    }
    checkpointsThrough(Number.POSITIVE_INFINITY);
    return { ...verifier.finish(last >= first ? last : undefined), headSeq };
  }

  /** The org's records after a position, in chain order, without content. */
  chainAfter(orgId: string, afterSeq: number, limit: number, toSeq?: number) {
    return this.deps.reader.chainAfter(orgId, afterSeq, limit, toSeq);
  }

  checkpoints(orgId: string, fromSeq: number, toSeq: number): Promise<CheckpointData[]> {
    return this.deps.reader.checkpoints(orgId, fromSeq, toSeq);
  }

  /** The org's purged ranges with positions in (afterSeq, toSeq]. */
  purgedRanges(orgId: string, afterSeq: number, toSeq: number): Promise<PurgedRange[]> {
    return this.deps.reader.purgedRanges(orgId, afterSeq, toSeq);
  }

  headSeq(orgId: string): Promise<number> {
    return this.deps.reader.head(orgId).then((h) => h?.seq ?? 0);
  }

  /** Resolves when the org's chain may have moved, or after `ms`. */
  waitForAppend(orgId: string, ms: number, signal: AbortSignal): Promise<void> {
    return this.deps.notifier.wait(orgId, ms, signal);
  }

  private async store(records: Parameters<PgAuditWriter["append"]>[0]): Promise<AppendResult> {
    const result = await this.deps.writer.append(records);
    if (result.chains.length > 0) this.deps.notifier.appended(result.chains);
    return result;
  }

  /** Shapes records for the caller; content only with a content grant, after recording the read. */
  private async answer(
    grant: ReadGrant,
    records: ChainedRecord[],
    rpc: string,
  ): Promise<AuditRecord[]> {
    if (!grant.content) return records.map((r) => recordToProto(r, undefined));
    const contents = await this.deps.reader.contents(records);
    const read = records.filter((r) => contents.has(r.id)).map((r) => r.id);
    if (read.length > 0) await this.recordRead(grant.caller, grant.orgId, rpc, read);
    return records.map((r) => recordToProto(r, contents.get(r.id) ?? null));
  }

  /** Reading prompts is itself audited: written before the content is answered, or not answered. */
  private async recordRead(caller: PrincipalCaller, orgId: string, rpc: string, ids: string[]) {
    const record = create(RecordSchema, {
      id: `read_${uuidv7()}`,
      kind: "audit.read",
      time: timestampFromMs(this.now()),
      orgId,
      actor: caller.principal.id,
      actorKind: PrincipalKind[caller.principal.kind].toLowerCase(),
      action: "read",
      subject: ids.length === 1 ? ids[0]! : `${ids.length} records`,
      status: "ok",
      attributes: { rpc, recordIds: ids, tokenId: caller.tokenId },
    });
    await this.store([incomingRecord(record, 0)]);
  }

  private async require(caller: PrincipalCaller, orgId: string, object: string): Promise<void> {
    const decision = await this.deps.check({
      subject: caller.principal.id,
      orgId,
      object,
      action: "read",
    });
    if (!decision.allowed)
      throw denied(
        `reading ${object === "audit" ? "the audit log" : "audit content"} needs read on ${object} (${decision.reason})`,
      );
  }
}
