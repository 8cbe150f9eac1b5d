import type { Usage } from "../kit/usage.js";

export interface ToolCall {
  id: string;
  name: string;
  /** As the model wrote them: a JSON text. */
  arguments: string;
}

/** Who called, as every record of a call names them. */
export interface CallContext {
  /** The interception id: one per call, shared by its request and response records. */
  id: string;
  /** Groups a conversation's calls: the client's x-airlock-session, or derived from the conversation's start. */
  sessionId: string;
  orgId: string;
  principalId: string;
  principalKind: string;
  workspace: string;
  repositories: string[];
  userAgent: string;
  api: string;
  endpoint: string;
  provider: string;
  model: string;
  stream: boolean;
}

/**
 * A copy of the call's context, field by field, for a record to be built on
 * with Object.assign. Not `{ ...context, kind, … }`: in Node 20's V8 an
 * object made by spread takes a new hidden class for each property added to
 * it, so a response record cost 28 µs to build against under 1 µs this way
 * (docs/benchmarks.md, stop 16).
 */
export function contextFields(c: CallContext): CallContext {
  return {
    id: c.id,
    sessionId: c.sessionId,
    orgId: c.orgId,
    principalId: c.principalId,
    principalKind: c.principalKind,
    workspace: c.workspace,
    repositories: c.repositories,
    userAgent: c.userAgent,
    api: c.api,
    endpoint: c.endpoint,
    provider: c.provider,
    model: c.model,
    stream: c.stream,
  };
}

/**
 * A JSON value kept as the text it arrived in: a request body that goes
 * upstream unchanged is recorded from its text, not serialised again from
 * its parsed form (prompts run to hundreds of kilobytes).
 */
export class JsonText {
  constructor(readonly text: string) {}
}

/**
 * Written before the request goes upstream. `content` holds what retention
 * may purge early: the body as it went upstream, as JsonText when that is
 * the caller's own text.
 */
export interface LlmRequestRecord extends CallContext {
  kind: "llm.request";
  time: string;
  /** Tools the caller offered that policy does not let it use: removed before the request left. */
  removedTools: string[];
  /** Tools the request offered upstream (after the removals). */
  toolNames: string[];
  content: { body: unknown };
}

/** Written when the call ends, whichever way. */
export interface LlmResponseRecord extends CallContext {
  kind: "llm.response";
  time: string;
  /** `denied`: refused by policy; `aborted`: the client went away; `error`: no good answer. */
  status: "ok" | "error" | "aborted" | "denied";
  httpStatus: number;
  upstreamModel: string;
  attempts: number;
  latencyMs: number;
  /** From the request to the first byte sent to the client; -1 when none was. */
  ttfbMs: number;
  stopReason: string;
  usage: Usage;
  toolNames: string[];
  error: string;
  content: { text: string; reasoning: string; toolCalls: ToolCall[] };
}

export type LlmRecord = LlmRequestRecord | LlmResponseRecord;

/**
 * Where the proxy puts its records. A call waits for `record` of its request
 * record before it goes upstream: a record that cannot be written stops the
 * call in `strict` audit mode (fail closed). The `Spool` backs it, and its
 * shipper hands the records to the audit service.
 */
export interface Recorder {
  record(record: LlmRecord): Promise<void>;
  close(): Promise<void>;
}
