import type { Collected } from "./collect.js";
import { contextFields, type CallContext, type LlmResponseRecord } from "./records.js";

/** How a call ended, as its response record tells it. */
export interface Outcome {
  status: LlmResponseRecord["status"];
  httpStatus: number;
  attempts?: number;
  /** From the start of the call to the first byte sent to the client; -1 or unset when none was. */
  ttfbMs?: number;
  upstreamModel?: string;
  collected?: Collected;
  error?: string;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** The `llm.response` record of a call that started at `started` (performance.now()). */
export function responseRecord(
  context: CallContext,
  started: number,
  outcome: Outcome,
): LlmResponseRecord {
  const c = outcome.collected;
  return Object.assign(contextFields(context), {
    kind: "llm.response" as const,
    time: new Date().toISOString(),
    status: outcome.status,
    httpStatus: outcome.httpStatus,
    upstreamModel: outcome.upstreamModel ?? "",
    attempts: outcome.attempts ?? 0,
    latencyMs: round(performance.now() - started),
    ttfbMs: outcome.ttfbMs === undefined || outcome.ttfbMs < 0 ? -1 : round(outcome.ttfbMs),
    stopReason: c?.stopReason ?? "",
    usage: c?.usage ?? {
      inputTokens: 0,
      outputTokens: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
    },
    toolNames: c?.toolCalls.map((t) => t.name) ?? [],
    error: outcome.error ?? "",
    content: { text: c?.text ?? "", reasoning: c?.reasoning ?? "", toolCalls: c?.toolCalls ?? [] },
  });
}
