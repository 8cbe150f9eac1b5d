import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import {
  AppendRecordsSchema,
  type AppendResponseSchema,
  AuditService,
  CheckpointSchema,
  RecordSchema,
  UsageSchema,
  type Checkpoint,
} from "../../gen/airlock/audit/v1/audit_pb.js";
import { callerKey, isService } from "../kit/caller.js";
import { denied, invalid, notFound, unauthenticated } from "../kit/errors.js";
import type { Audit } from "./audit.js";
import type { CheckpointData } from "./checkpoint.js";
import { purgedRangeToProto, recordToProto } from "./convert.js";
import { parseQueryCursor, parseTailCursor, queryCursor, tailCursor } from "./cursor.js";
import type { PgAuditPurger } from "./pg-purge.js";
import type { PgAuditReader } from "./pg-reader.js";
import { purgePolicy } from "./purge-policy.js";

const maxPage = 1000;
const exportPage = 1000;

export interface AuditServiceDeps {
  audit: Audit;
  reader: PgAuditReader;
  purger: PgAuditPurger;
  tailPollMs: number;
}

type Methods = typeof AuditService extends GenService<infer M> ? M : never;

const append = { ...AuditService.method.append, input: AppendRecordsSchema };

/**
 * AuditService as audit serves it: Append reads its request as
 * AppendRecords, the same wire form with each record left as its bytes,
 * which `decodeRecord` (record-wire.ts) reads straight into what is
 * stored. Clients call AuditService.
 */
export const AuditServiceAsServed = {
  ...AuditService,
  methods: AuditService.methods.map((m) => (m === AuditService.method.append ? append : m)),
  method: { ...AuditService.method, append },
} as unknown as GenService<
  Omit<Methods, "append"> & {
    append: {
      methodKind: "unary";
      input: typeof AppendRecordsSchema;
      output: typeof AppendResponseSchema;
    };
  }
>;

/** Maps audit's RPCs onto the domain; authentication happened in the interceptor. */
export function auditService(deps: AuditServiceDeps): ServiceImpl<typeof AuditServiceAsServed> {
  const { audit } = deps;
  const caller = (ctx: HandlerContext) => ctx.values.get(callerKey);
  const ms = (t: Parameters<typeof timestampDate>[0] | undefined) =>
    t ? timestampDate(t).getTime() : undefined;

  return {
    async append(req, ctx) {
      // A JSON request's records come decoded; they take the same way as the binary codecs' bytes.
      const records =
        req.records.length === 0
          ? req.encoded
          : [...req.encoded, ...req.records.map((r) => toBinary(RecordSchema, r))];
      const result = await audit.append(caller(ctx), records);
      return { stored: result.stored, duplicates: result.duplicates };
    },

    async query(req, ctx) {
      const grant = await audit.grant(caller(ctx), req.orgId, req.includeContent);
      const pageSize = req.pageSize === 0 ? 100 : req.pageSize;
      if (pageSize < 1 || pageSize > maxPage) throw invalid(`page_size: expected 1 to ${maxPage}`);
      const records = await audit.query(grant, {
        sinceMs: ms(req.since),
        untilMs: ms(req.until),
        actor: req.actor,
        kinds: req.kinds,
        provider: req.provider,
        model: req.model,
        workspace: req.workspace,
        repository: req.repository,
        sessionId: req.sessionId,
        toolName: req.toolName,
        status: req.status,
        before: req.cursor ? parseQueryCursor(req.cursor) : undefined,
        limit: pageSize + 1,
      });
      const page = records.slice(0, pageSize);
      const last = page.at(-1);
      return {
        records: page,
        nextCursor:
          records.length > pageSize && last
            ? queryCursor(timestampDate(last.time!).getTime(), last.id)
            : "",
      };
    },

    async get(req, ctx) {
      if (!req.id) throw invalid("id: required");
      const grant = await audit.grant(caller(ctx), req.orgId, req.includeContent);
      const record = await audit.get(grant, req.id);
      if (!record) throw notFound(`no audit record ${req.id} in this org`);
      return { record };
    },

    async *tail(req, ctx) {
      const { orgId } = await audit.grant(caller(ctx), req.orgId, false);
      let after = req.cursor
        ? parseTailCursor(req.cursor, orgId)
        : req.fromStart
          ? 0
          : await audit.headSeq(orgId);
      while (!ctx.signal.aborted) {
        const page = await audit.chainAfter(orgId, after, 500);
        for (const r of page) {
          yield { record: recordToProto(r, undefined), cursor: tailCursor(orgId, r.seq) };
          after = r.seq;
        }
        if (page.length < 500) await audit.waitForAppend(orgId, deps.tailPollMs, ctx.signal);
      }
    },

    async verify(req, ctx) {
      const { orgId } = await audit.grant(caller(ctx), req.orgId, false);
      const result = await audit.verify(orgId, Number(req.fromSeq), Number(req.toSeq));
      return {
        ok: result.ok,
        recordsChecked: BigInt(result.recordsChecked),
        checkpointsChecked: BigInt(result.checkpointsChecked),
        headSeq: BigInt(result.headSeq),
        recordsPurged: BigInt(result.recordsPurged),
        problem: result.problem && {
          code: result.problem.code,
          seq: BigInt(result.problem.seq),
          toSeq: BigInt(result.problem.toSeq),
          recordId: result.problem.recordId,
          message: result.problem.message,
        },
      };
    },

    async *export(req, ctx) {
      const { orgId } = await audit.grant(caller(ctx), req.orgId, false);
      const head = await audit.headSeq(orgId);
      const last = req.toSeq > 0n ? Math.min(Number(req.toSeq), head) : head;
      let after = req.fromSeq > 0n ? Number(req.fromSeq) - 1 : 0;
      while (after < last && !ctx.signal.aborted) {
        const page = await audit.chainAfter(orgId, after, exportPage, last);
        // A short page reaches `last`: the ranges and checkpoints up to it (a purged head) come with it.
        const end = page.length === exportPage ? page.at(-1)!.seq : last;
        const [purged, checkpoints] = await Promise.all([
          audit.purgedRanges(orgId, after, end),
          audit.checkpoints(orgId, after + 1, end),
        ]);
        yield {
          records: page.map((r) => recordToProto(r, undefined)),
          checkpoints: checkpoints.map(checkpointToProto),
          purged: purged.map(purgedRangeToProto),
        };
        after = end;
      }
    },

    async listSigningKeys(_req, ctx) {
      if (caller(ctx).kind === "anonymous") throw unauthenticated();
      const keys = await deps.reader.signingKeys();
      return {
        keys: keys.map((k) => ({
          keyId: k.keyId,
          publicKeyPem: k.publicKeyPem,
          createdAt: timestampFromDate(k.createdAt),
        })),
      };
    },

    async usageReport(req, ctx) {
      const { orgId } = await audit.grant(caller(ctx), req.orgId, false);
      if (!req.since) throw invalid("since: required");
      const rows = await deps.reader.usage(orgId, ms(req.since)!, ms(req.until) ?? Date.now());
      return {
        rows: rows.map((r) => ({
          actor: r.actor,
          model: r.model,
          day: r.day,
          requests: BigInt(r.requests),
          usage: create(UsageSchema, {
            inputTokens: BigInt(r.inputTokens),
            outputTokens: BigInt(r.outputTokens),
            cacheReadTokens: BigInt(r.cacheReadTokens),
            cacheWriteTokens: BigInt(r.cacheWriteTokens),
            reasoningTokens: BigInt(r.reasoningTokens),
          }),
        })),
      };
    },

    async purge(req, ctx) {
      if (!isService(caller(ctx), "retention"))
        throw denied("only the retention service purges the audit log");
      const outcome = await deps.purger.purge(purgePolicy(req));
      return {
        orgs: outcome.orgs.map((o) => ({
          orgId: o.orgId,
          contentPurged: BigInt(o.content),
          metadataPurged: BigInt(o.metadata),
          receiptsPurged: BigInt(o.receipts),
          held: o.held.map((h) => ({ holdId: h.holdId, records: BigInt(h.records) })),
        })),
        partitionsTruncated: outcome.partitionsTruncated,
      };
    },
  };
}

/** A checkpoint as callers and offline verifiers see it. */
export function checkpointToProto(c: CheckpointData): Checkpoint {
  return create(CheckpointSchema, {
    chainId: c.chainId,
    seq: BigInt(c.seq),
    hash: c.hash,
    prevCheckpointHash: c.prevCheckpointHash,
    time: timestampFromMs(c.timeMs),
    keyId: c.keyId,
    checkpointHash: c.checkpointHash,
    signature: c.signature,
  });
}
