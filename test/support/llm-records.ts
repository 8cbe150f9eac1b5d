import type {
  CallContext,
  LlmRequestRecord,
  LlmResponseRecord,
} from "../../services/proxy/records.js";

const context = (id: string): CallContext => ({
  id,
  sessionId: "s_test",
  orgId: "org_test",
  principalId: "agt_test",
  principalKind: "agent",
  workspace: "",
  repositories: [],
  userAgent: "test",
  api: "openai",
  endpoint: "chat",
  provider: "openai",
  model: "gpt-4o",
  stream: false,
});

/** A request record of call `id`, its prompt `text`. */
export function requestRecord(id: string, text = "hello"): LlmRequestRecord {
  return {
    ...context(id),
    kind: "llm.request",
    time: new Date().toISOString(),
    removedTools: [],
    toolNames: [],
    content: { body: { model: "gpt-4o", messages: [{ role: "user", content: text }] } },
  };
}

/** The response record of call `id`. */
export function responseRecord(id: string): LlmResponseRecord {
  return {
    ...context(id),
    kind: "llm.response",
    time: new Date().toISOString(),
    status: "ok",
    httpStatus: 200,
    upstreamModel: "gpt-4o",
    attempts: 1,
    latencyMs: 12.5,
    ttfbMs: 10,
    stopReason: "stop",
    usage: {
      inputTokens: 5,
      outputTokens: 3,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
    },
    toolNames: [],
    error: "",
    content: { text: "Hi.", reasoning: "", toolCalls: [] },
  };
}
