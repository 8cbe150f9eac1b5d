import type { JsonObject } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AuditService, type Record as AuditRecord } from "../../gen/airlock/audit/v1/audit_pb.js";
import type {
  CallContext,
  LlmRecord,
  LlmRequestRecord,
  LlmResponseRecord,
  ToolCall,
} from "../../services/proxy/records.js";
import { connectTo } from "./clients.js";

/** Lets an org's admins read prompts and answers in the audit log (the starter bundle does not). */
export const readContentRule = "p, role:org-admin, audit:content, read, allow";

/** Who reads the proxy's records back from audit: an RPC URL and a token with `read` on `audit` and `audit:content`. */
export interface AuditReader {
  url: string;
  token: string;
}

/** A proxy record as the proxy wrote it, from its audit record (the inverse of services/proxy/audit-record.ts). */
function llmRecord(r: AuditRecord): LlmRecord {
  const a = (r.attributes ?? {}) as JsonObject;
  const c = (r.content ?? {}) as JsonObject;
  const context: CallContext = {
    id: r.interceptionId,
    sessionId: r.sessionId,
    orgId: r.orgId,
    principalId: r.actor,
    principalKind: r.actorKind,
    workspace: r.workspace,
    repositories: r.repositories,
    userAgent: r.userAgent,
    api: a.api as string,
    endpoint: a.endpoint as string,
    provider: r.provider,
    model: r.model,
    stream: a.stream as boolean,
  };
  const time = timestampDate(r.time!).toISOString();
  if (r.kind === "llm.request") {
    return {
      ...context,
      kind: "llm.request",
      time,
      removedTools: a.removedTools as string[],
      toolNames: r.toolNames,
      content: { body: c.body },
    };
  }
  return {
    ...context,
    kind: "llm.response",
    time,
    status: r.status as LlmResponseRecord["status"],
    httpStatus: a.httpStatus as number,
    upstreamModel: a.upstreamModel as string,
    attempts: a.attempts as number,
    latencyMs: Number(r.latencyMs),
    ttfbMs: a.ttfbMs as number,
    stopReason: a.stopReason as string,
    usage: {
      inputTokens: Number(r.usage?.inputTokens ?? 0n),
      outputTokens: Number(r.usage?.outputTokens ?? 0n),
      cacheReadTokens: Number(r.usage?.cacheReadTokens ?? 0n),
      cacheWriteTokens: Number(r.usage?.cacheWriteTokens ?? 0n),
      reasoningTokens: Number(r.usage?.reasoningTokens ?? 0n),
    },
    toolNames: r.toolNames,
    error: a.error as string,
    content: {
      text: c.text as string,
      reasoning: c.reasoning as string,
      toolCalls: c.toolCalls as unknown as ToolCall[],
    },
  };
}

/** Every proxy record of the reader's org in the audit log, newest first. */
export async function auditedRecords(reader: AuditReader): Promise<LlmRecord[]> {
  const audit = connectTo(AuditService, reader.url, reader.token);
  const records: LlmRecord[] = [];
  for (let cursor = ""; ;) {
    const page = await audit.query({
      kinds: ["llm.request", "llm.response"],
      includeContent: true,
      pageSize: 1000,
      cursor,
    });
    records.push(...page.records.map(llmRecord));
    if (!page.nextCursor) return records;
    cursor = page.nextCursor;
  }
}

/**
 * The request and response records of the latest call matching `predicate`,
 * as audit stored them, waiting for the proxy's shipper to deliver them.
 */
export async function recordsOf(reader: AuditReader, predicate: (r: LlmRequestRecord) => boolean) {
  for (let i = 0; i < 250; i++) {
    const all = await auditedRecords(reader);
    const request = all
      .filter((r): r is LlmRequestRecord => r.kind === "llm.request")
      .find(predicate);
    const response =
      request &&
      all.find((r): r is LlmResponseRecord => r.kind === "llm.response" && r.id === request.id);
    if (request && response) return { request, response };
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("no matching records");
}
