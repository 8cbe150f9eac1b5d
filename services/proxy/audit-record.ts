import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { RecordSchema, type Record as AuditRecord } from "../../gen/airlock/audit/v1/audit_pb.js";
import { usageToProto } from "../kit/usage.js";
import type { SpooledRecord } from "./spool-line.js";

/**
 * The audit record of a spooled proxy record, its content the spooled JSON
 * text as it is. A call's request and response records share its
 * interception id, so each gets a suffix for an id of its own: audit stores
 * records idempotently on that id, and a spool replayed after a crash sends
 * the same ids again.
 */
export function auditRecord({ meta: r, contentJson }: SpooledRecord): AuditRecord {
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
    toolNames: r.toolNames,
    contentJson: Buffer.from(contentJson),
  };
  const described = { api: r.api, endpoint: r.endpoint, stream: r.stream };
  if (r.kind === "llm.request") {
    return create(RecordSchema, {
      ...common,
      id: `${r.id}.request`,
      status: "",
      attributes: { ...described, removedTools: r.removedTools },
    });
  }
  return create(RecordSchema, {
    ...common,
    id: `${r.id}.response`,
    status: r.status,
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
  });
}
