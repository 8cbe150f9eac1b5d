import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { RecordSchema, type Record as AuditRecord } from "../../gen/airlock/audit/v1/audit_pb.js";
import { usageToProto } from "../kit/usage.js";
import type { Endpoint } from "./collect.js";
import type { LlmRecord } from "./records.js";
import { offeredTools } from "./tools.js";

/**
 * The audit record of a proxy record. A call's request and response records
 * share its interception id, so each gets a suffix for an id of its own:
 * audit stores records idempotently on that id, and a spool replayed after a
 * crash sends the same ids again.
 */
export function auditRecord(r: LlmRecord): AuditRecord {
  const common = {
    kind: r.kind,
    time: timestampFromDate(new Date(r.time)),
    orgId: r.orgId,
    actor: r.principalId,
    actorKind: r.principalKind,
    action: "invoke",
    subject: "",
    sessionId: r.sessionId,
    interceptionId: r.id,
    workspace: r.workspace,
    repositories: r.repositories,
    userAgent: r.userAgent,
    provider: r.provider,
    model: r.model,
  };
  const described = { api: r.api, endpoint: r.endpoint, stream: r.stream };
  if (r.kind === "llm.request") {
    const body = r.content.body;
    return create(RecordSchema, {
      ...common,
      id: `${r.id}.request`,
      status: "",
      // The body is the request as it went upstream: the tools left after policy removed some.
      toolNames:
        body && typeof body === "object" && !Array.isArray(body)
          ? offeredTools(r.endpoint as Endpoint, body as Record<string, unknown>)
          : [],
      attributes: { ...described, removedTools: r.removedTools },
      content: { body: (body ?? null) as JsonValue },
    });
  }
  return create(RecordSchema, {
    ...common,
    id: `${r.id}.response`,
    status: r.status,
    toolNames: r.toolNames,
    usage: usageToProto(r.usage),
    // Rounded up: a whole number of milliseconds that is never shorter than the time to first byte.
    latencyMs: BigInt(Math.ceil(r.latencyMs)),
    attributes: {
      ...described,
      httpStatus: r.httpStatus,
      upstreamModel: r.upstreamModel,
      attempts: r.attempts,
      ttfbMs: r.ttfbMs,
      stopReason: r.stopReason,
      error: r.error,
    },
    content: {
      text: r.content.text,
      reasoning: r.content.reasoning,
      toolCalls: r.content.toolCalls.map((c) => ({
        id: c.id,
        name: c.name,
        arguments: c.arguments,
      })),
    } satisfies JsonObject,
  });
}
