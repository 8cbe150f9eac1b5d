import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  PurgedRangeSchema,
  RecordSchema,
  type PurgedRange as PurgedRangeProto,
  type Record as AuditRecord,
  type Usage,
} from "../../gen/airlock/audit/v1/audit_pb.js";
import { invalid } from "../kit/errors.js";
import { usageToProto } from "../kit/usage.js";
import { canonicalJson, sha256Hex } from "./canonical.js";
import { metaDigest, type ChainedRecord, type RecordMeta } from "./chain.js";
import type { PurgedRange } from "./purged-ranges.js";

/** A record ready to store: its metadata and its digest, and, when it has any, its content text's UTF-8 bytes. */
export interface IncomingRecord {
  meta: RecordMeta;
  digest: string;
  content: Uint8Array | undefined;
}

/**
 * A record as a writer sent it, before it is checked: what `incomingRecord`
 * reads of a Record, so the generated type minus what the service sets. A
 * decoded Record message is one; so is what `decodeRecord` reads straight
 * from Append's wire form.
 */
export type SentRecord = Omit<
  AuditRecord,
  | "$typeName"
  | "$unknown"
  | "time"
  | "usage"
  | "contentSha256"
  | "chainId"
  | "seq"
  | "prevHash"
  | "hash"
  | "contentPurged"
> & {
  time?: Pick<Timestamp, "seconds" | "nanos">;
  usage?: Omit<Usage, "$typeName" | "$unknown">;
};

const kindPattern = /^[a-z][a-z_]*(\.[a-z_]+)+$/;
const idPattern = /^[\x21-\x7e]{1,200}$/;

/**
 * Checks a record from a writer and puts it in the form that is stored and
 * hashed. Text columns cannot hold NUL, and a writer's record must never be
 * refused for one (it would block its spool), so NUL becomes U+FFFD before
 * the record is hashed; content keeps it, escaped inside its JSON text.
 */
export function incomingRecord(r: SentRecord, index: number): IncomingRecord {
  const where = `records[${index}]`;
  if (!idPattern.test(r.id)) throw invalid(`${where}.id: expected 1-200 printable characters`);
  if (!kindPattern.test(r.kind))
    throw invalid(`${where}.kind: expected a dotted lowercase name like llm.request`);
  if (!r.time) throw invalid(`${where}.time: required`);
  if (!r.orgId) throw invalid(`${where}.org_id: required`);
  const content = contentText(r, where);
  const usage = r.usage;
  const meta: RecordMeta = {
    id: r.id,
    kind: r.kind,
    timeMs: timeMs(r.time, `${where}.time`),
    orgId: clean(r.orgId),
    actor: clean(r.actor),
    actorKind: clean(r.actorKind),
    action: clean(r.action),
    subject: clean(r.subject),
    status: clean(r.status),
    sessionId: clean(r.sessionId),
    interceptionId: clean(r.interceptionId),
    workspace: clean(r.workspace),
    repositories: r.repositories.map(clean),
    userAgent: clean(r.userAgent),
    provider: clean(r.provider),
    model: clean(r.model),
    toolNames: r.toolNames.map(clean),
    usage: {
      inputTokens: exact(usage?.inputTokens ?? 0n, `${where}.usage.input_tokens`),
      outputTokens: exact(usage?.outputTokens ?? 0n, `${where}.usage.output_tokens`),
      cacheReadTokens: exact(usage?.cacheReadTokens ?? 0n, `${where}.usage.cache_read_tokens`),
      cacheWriteTokens: exact(usage?.cacheWriteTokens ?? 0n, `${where}.usage.cache_write_tokens`),
      reasoningTokens: exact(usage?.reasoningTokens ?? 0n, `${where}.usage.reasoning_tokens`),
    },
    latencyMs: exact(r.latencyMs, `${where}.latency_ms`),
    attributes: canonicalJson(r.attributes ?? {}),
    contentSha256: content === undefined ? "" : sha256Hex(content),
  };
  return { meta, digest: metaDigest(meta), content };
}

/** The latest (and, negated, earliest) time a Date holds, in ms since 1970. */
const maxTimeMs = 8.64e15;

/** A Timestamp in whole milliseconds, as protobuf-es's `timestampMs` rounds it. */
function timeMs(t: NonNullable<SentRecord["time"]>, where: string): number {
  const ms = Number(t.seconds) * 1000 + Math.round(t.nanos / 1_000_000);
  if (!(Math.abs(ms) <= maxTimeMs)) throw invalid(`${where}: out of range`);
  return ms;
}

const maxExact = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * An int64 as it is hashed and stored: a JSON number, exact only within
 * ±(2^53 − 1). A larger one would hash as a rounded value, or not fit the
 * column at all, so it is refused, naming the field.
 */
function exact(value: bigint, where: string): number {
  if (value > maxExact || value < -maxExact)
    throw invalid(`${where}: expected a whole number within ±(2^53 − 1), got ${value}`);
  return Number(value);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The content as stored and hashed: content_json exactly as sent, once it
 * is known to be UTF-8 text of a JSON object (which also keeps NUL out:
 * JSON has it only escaped), or an older writer's Struct as canonical JSON.
 */
function contentText(r: SentRecord, where: string): Uint8Array | undefined {
  const struct = r.content !== undefined && Object.keys(r.content).length > 0;
  if (struct && r.contentJson.length > 0)
    throw invalid(`${where}: content and content_json both set; send content_json only`);
  // A writer from before content_json (a proxy not yet upgraded, its spool replayed)
  // sends a Struct: refusing it would set its records aside, so its canonical text is kept.
  if (struct) return Buffer.from(canonicalJson(r.content));
  if (r.contentJson.length === 0) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(r.contentJson));
  } catch {
    throw invalid(`${where}.content_json: expected the UTF-8 text of a JSON object`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw invalid(`${where}.content_json: expected a JSON object`);
  return r.contentJson;
}

function clean(text: string): string {
  return text.includes("\0") ? text.replaceAll("\0", "\uFFFD") : text;
}

/**
 * A stored record as callers see it. `content` is the stored content text
 * when the caller may read it, null when it may but the content was purged,
 * and undefined when it may not.
 */
export function recordToProto(r: ChainedRecord, content: string | null | undefined): AuditRecord {
  return create(RecordSchema, {
    id: r.id,
    kind: r.kind,
    time: timestampFromMs(r.timeMs),
    orgId: r.orgId,
    actor: r.actor,
    actorKind: r.actorKind,
    action: r.action,
    subject: r.subject,
    status: r.status,
    sessionId: r.sessionId,
    interceptionId: r.interceptionId,
    workspace: r.workspace,
    repositories: r.repositories,
    userAgent: r.userAgent,
    provider: r.provider,
    model: r.model,
    toolNames: r.toolNames,
    usage: usageToProto(r.usage),
    latencyMs: BigInt(r.latencyMs),
    attributes: JSON.parse(r.attributes) as JsonObject,
    content: typeof content === "string" ? (JSON.parse(content) as JsonObject) : undefined,
    contentSha256: r.contentSha256,
    chainId: r.chainId,
    seq: BigInt(r.seq),
    prevHash: r.prevHash,
    hash: r.hash,
    contentPurged: content === null && r.contentSha256 !== "",
  });
}

/** The chained form of a record read back from an export (content left out). */
export function protoToChained(r: AuditRecord): ChainedRecord {
  const { meta } = incomingRecord(r, 0);
  return {
    ...meta,
    // The stored digest, not one of the (absent) content.
    contentSha256: r.contentSha256,
    chainId: r.chainId,
    seq: Number(r.seq),
    prevHash: r.prevHash,
    hash: r.hash,
  };
}

/** A purged range as callers and offline verifiers see it. */
export function purgedRangeToProto(r: PurgedRange): PurgedRangeProto {
  return create(PurgedRangeSchema, {
    chainId: r.chainId,
    fromSeq: BigInt(r.fromSeq),
    toSeq: BigInt(r.toSeq),
    lastHash: r.lastHash,
    runId: r.runId,
  });
}

/** A purged range read back from an export; one that spans no positions is refused. */
export function protoToPurgedRange(r: PurgedRangeProto): PurgedRange {
  if (r.fromSeq < 1n || r.toSeq < r.fromSeq)
    throw invalid(`positions ${r.fromSeq}..${r.toSeq}: expected 1 <= from_seq <= to_seq`);
  return {
    chainId: r.chainId,
    fromSeq: Number(r.fromSeq),
    toSeq: Number(r.toSeq),
    lastHash: r.lastHash,
    runId: r.runId,
  };
}
