import { canonicalJson, sha256Hex } from "../../services/audit/canonical.js";
import type { RecordMeta } from "../../services/audit/chain.js";

/** Record `i` of a test chain, as the audit log hashes it (text that canonical JSON must escape included). */
export function recordMeta(i: number, overrides: Partial<RecordMeta> = {}): RecordMeta {
  return {
    id: `rec_${i}`,
    kind: "llm.response",
    timeMs: 1_767_225_600_000 + i,
    orgId: "org_1",
    actor: "agt_1",
    actorKind: "agent",
    action: "invoke",
    subject: "",
    status: "ok",
    sessionId: "ses_1",
    interceptionId: `call_${i}`,
    workspace: "payments",
    repositories: ["github.com/acme/payments"],
    userAgent: 'curl/8 "quoted" \u2028 é',
    provider: "openai",
    model: "gpt-4.1-mini",
    toolNames: ["shell"],
    usage: {
      inputTokens: 10,
      outputTokens: 5,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 1,
    },
    latencyMs: 120,
    attributes: canonicalJson({ z: 1, a: ["x"], httpStatus: 200 }),
    contentSha256: sha256Hex("{}"),
    ...overrides,
  };
}
