import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  RecordSchema,
  UsageSchema,
  type Record as AuditRecord,
} from "../../gen/airlock/audit/v1/audit_pb.js";

/** An LLM response record as the proxy writes it, with about `contentBytes` of content. */
export function llmResponse(
  orgId: string,
  overrides: Partial<{
    id: string;
    timeMs: number;
    actor: string;
    model: string;
    sessionId: string;
    tool: string;
    contentBytes: number;
    inputTokens: number;
  }> = {},
): AuditRecord {
  const text = "The answer is 42. ".repeat(Math.ceil((overrides.contentBytes ?? 200) / 18));
  return create(RecordSchema, {
    id: overrides.id ?? `${randomUUID()}.response`,
    kind: "llm.response",
    time: timestampFromMs(overrides.timeMs ?? Date.now()),
    orgId,
    actor: overrides.actor ?? "agt_test",
    actorKind: "agent",
    action: "invoke",
    status: "ok",
    sessionId: overrides.sessionId ?? "ses_1",
    interceptionId: randomUUID(),
    workspace: "payments",
    repositories: ["github.com/acme/payments"],
    userAgent: "test",
    provider: "openai",
    model: overrides.model ?? "gpt-4.1-mini",
    toolNames: overrides.tool ? [overrides.tool] : [],
    usage: create(UsageSchema, {
      inputTokens: BigInt(overrides.inputTokens ?? 10),
      outputTokens: 5n,
      cacheReadTokens: 2n,
      reasoningTokens: 1n,
    }),
    latencyMs: 12n,
    attributes: { httpStatus: 200, stream: false },
    contentJson: Buffer.from(JSON.stringify({ text, reasoning: "", toolCalls: [] })),
  });
}
