import type { Usage } from "../kit/usage.js";
import { sha256Hex } from "./canonical.js";

/**
 * A record's metadata as stored and hashed: everything but the content,
 * which is represented by its digest. Times are whole milliseconds, the
 * precision every reader (pg's Date, JSON) keeps.
 */
export interface RecordMeta {
  id: string;
  kind: string;
  timeMs: number;
  orgId: string;
  actor: string;
  actorKind: string;
  action: string;
  subject: string;
  status: string;
  sessionId: string;
  interceptionId: string;
  workspace: string;
  repositories: string[];
  userAgent: string;
  provider: string;
  model: string;
  toolNames: string[];
  usage: Usage;
  latencyMs: number;
  /** Canonical JSON text of the attributes object. */
  attributes: string;
  /** SHA-256 of the canonical content text, or "" when there was none. */
  contentSha256: string;
}

/** Where a record sits in its chain. */
export interface ChainLink {
  chainId: string;
  seq: number;
  prevHash: string;
  hash: string;
}

export type ChainedRecord = RecordMeta & ChainLink;

/**
 * SHA-256 over a record's canonical metadata (its content represented by
 * `contentSha256`). Computed before a batch takes its chain's lock, so that
 * inside the lock each record costs one small hash.
 */
export function metaDigest(meta: RecordMeta): string {
  // Keys in sorted order, so JSON.stringify (native, several times faster
  // than a generic canonicaliser) writes exactly the canonical form; fields
  // are named one by one so a stored record passed whole (with its chain
  // fields, or a database's extra columns) digests the same. chain.test.ts
  // holds this equal to canonicalJson.
  const hashed: RecordMeta = {
    action: meta.action,
    actor: meta.actor,
    actorKind: meta.actorKind,
    attributes: meta.attributes,
    contentSha256: meta.contentSha256,
    id: meta.id,
    interceptionId: meta.interceptionId,
    kind: meta.kind,
    latencyMs: meta.latencyMs,
    model: meta.model,
    orgId: meta.orgId,
    provider: meta.provider,
    repositories: meta.repositories,
    sessionId: meta.sessionId,
    status: meta.status,
    subject: meta.subject,
    timeMs: meta.timeMs,
    toolNames: meta.toolNames,
    usage: {
      cacheReadTokens: meta.usage.cacheReadTokens,
      cacheWriteTokens: meta.usage.cacheWriteTokens,
      inputTokens: meta.usage.inputTokens,
      outputTokens: meta.usage.outputTokens,
      reasoningTokens: meta.usage.reasoningTokens,
    },
    userAgent: meta.userAgent,
    workspace: meta.workspace,
  };
  return sha256Hex(JSON.stringify(hashed));
}

/** A record's hash: its place in the chain, its predecessor's hash and its metadata digest. */
export function recordHash(link: Omit<ChainLink, "hash">, digest: string): string {
  // Keys in sorted order: JSON.stringify writes the canonical form.
  return sha256Hex(
    JSON.stringify({
      chainId: link.chainId,
      metaSha256: digest,
      prevHash: link.prevHash,
      seq: link.seq,
    }),
  );
}

/** A chain's head: the last position handed out and its record's hash. */
export interface ChainHead {
  chainId: string;
  seq: number;
  hash: string;
}

/** Gives the next records of a chain (with their metadata digests) positions and hashes, in order. */
export function extendChain(
  head: ChainHead,
  records: readonly { meta: RecordMeta; digest: string }[],
): ChainedRecord[] {
  let { seq, hash } = head;
  return records.map(({ meta, digest }) => {
    const link = { chainId: head.chainId, seq: seq + 1, prevHash: hash, hash: "" };
    link.hash = recordHash(link, digest);
    seq = link.seq;
    hash = link.hash;
    return chainedRecord(meta, link);
  });
}

/**
 * A record with its place in the chain. Written field by field: a spread
 * of the metadata costs several times more, once per record appended.
 */
function chainedRecord(meta: RecordMeta, link: ChainLink): ChainedRecord {
  return {
    id: meta.id,
    kind: meta.kind,
    timeMs: meta.timeMs,
    orgId: meta.orgId,
    actor: meta.actor,
    actorKind: meta.actorKind,
    action: meta.action,
    subject: meta.subject,
    status: meta.status,
    sessionId: meta.sessionId,
    interceptionId: meta.interceptionId,
    workspace: meta.workspace,
    repositories: meta.repositories,
    userAgent: meta.userAgent,
    provider: meta.provider,
    model: meta.model,
    toolNames: meta.toolNames,
    usage: meta.usage,
    latencyMs: meta.latencyMs,
    attributes: meta.attributes,
    contentSha256: meta.contentSha256,
    chainId: link.chainId,
    seq: link.seq,
    prevHash: link.prevHash,
    hash: link.hash,
  };
}
