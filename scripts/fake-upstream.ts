/**
 * A fake LLM provider for tests and benchmarks. It speaks enough of the OpenAI (Chat Completions,
 * Responses, models) and Anthropic (Messages, count_tokens, models) HTTP wire formats that the
 * official `openai` and `@anthropic-ai/sdk` clients accept its answers.
 *
 * Answers are deterministic (fixed ids, timestamps, text and token counts) so tests can assert
 * exact values, and they depend only on a few request fields, so each distinct answer is
 * serialised once and then served from memory: the benchmark needs >10,000 requests/s.
 *
 *   node --import tsx scripts/fake-upstream.ts [--port N] [--latency-ms N]
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

export type Fault =
  | { kind: "status"; status: number; retryAfterSeconds?: number }
  | { kind: "reset" }
  | { kind: "midstream" };

export interface FakeUpstreamOptions {
  port?: number;
  host?: string;
  latencyMs?: number;
  chunkDelayMs?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

export interface FakeUpstream {
  url: string;
  /**
   * Requests received, newest last; keeps the last 1000. `path` has no query string; `body` is
   * the parsed JSON, or undefined when there was none or it did not parse.
   */
  requests: RecordedRequest[];
  /**
   * The next `count` (default 1) model requests (POST to a completion endpoint) get this fault
   * instead of a normal answer. A second call queues its fault behind the first.
   */
  failNext(fault: Fault, count?: number): void;
  /** Drops every fault still queued. */
  clearFaults(): void;
  /**
   * Milliseconds to wait before answering, and between SSE events when streaming. Both start
   * at 0 (or the options'), and an omitted `chunkDelayMs` sets it back to 0.
   */
  setLatency(latencyMs: number, chunkDelayMs?: number): void;
  close(): Promise<void>;
}

const TEXT_DELTAS = ["Hello", " from", " the", " fake", " upstream."];
const TEXT = TEXT_DELTAS.join("");
const REASONING_TEXT = "Let me think.";
const SIGNATURE = "sig_fake";
const TOOL_INPUT = { city: "Paris" };
const TOOL_ARGUMENT_FRAGMENTS = ['{"city":', '"Paris"}'];
const TOOL_ARGUMENTS = TOOL_ARGUMENT_FRAGMENTS.join("");
/** A fixed timestamp keeps answers byte-for-byte reproducible, and so cacheable. */
const CREATED = 1715367049;
const MAX_RECORDED = 1000;
const MAX_CACHED = 1000;
/**
 * Longer than any client's idle timeout, so the client is the side that closes an idle
 * connection: a server-side close can race a request the client has just sent on it.
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

type Provider = "openai" | "anthropic";
type Route = "chat" | "responses" | "messages" | "count_tokens" | "models";
type ModelRoute = "chat" | "responses" | "messages";

const GPT_ID = "gpt-4o";
const CLAUDE_ID = "claude-sonnet-4-5";
/** Echoed when a request names no model, so the answer still has one. */
const DEFAULT_MODELS: Record<ModelRoute, string> = {
  chat: GPT_ID,
  responses: GPT_ID,
  messages: CLAUDE_ID,
};

const ROUTES = new Map<string, Route>([
  ["POST /v1/chat/completions", "chat"],
  ["POST /v1/responses", "responses"],
  ["POST /v1/messages", "messages"],
  ["POST /v1/messages/count_tokens", "count_tokens"],
  ["GET /v1/models", "models"],
]);

/** What a model request asks for: the only fields that shape the answer, so also its cache key. */
interface Ask {
  route: ModelRoute;
  model: string;
  stream: boolean;
  includeUsage: boolean;
  reasoning: boolean;
  /** The first tool's name, or null without tools. */
  tool: string | null;
}

// ---------------------------------------------------------------------------------------------
// Reading requests

const MALFORMED = Symbol("malformed JSON");

function parseBody(chunks: Buffer[]): unknown {
  if (chunks.length === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    return MALFORMED;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function prop(value: unknown, key: string): unknown {
  return isObject(value) ? value[key] : undefined;
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return "/";
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}

function providerOf(route: Route | undefined, headers: IncomingHttpHeaders): Provider {
  if (route === "chat" || route === "responses") return "openai";
  if (route === "messages" || route === "count_tokens") return "anthropic";
  // Both SDKs list models at /v1/models; only Anthropic's sends these headers.
  return headers["anthropic-version"] !== undefined || headers["x-api-key"] !== undefined
    ? "anthropic"
    : "openai";
}

function toolName(route: ModelRoute, tool: unknown): unknown {
  switch (route) {
    case "chat":
      return prop(prop(tool, "function"), "name");
    case "responses":
      // Built-in tools (web_search, …) have no name and cannot be called as functions.
      return prop(tool, "type") === "function" ? prop(tool, "name") : undefined;
    case "messages":
      return prop(tool, "name");
  }
}

function firstToolName(route: ModelRoute, tools: unknown): string | null {
  if (!Array.isArray(tools)) return null;
  for (const tool of tools) {
    const name = toolName(route, tool);
    if (typeof name === "string") return name;
  }
  return null;
}

function readAsk(route: ModelRoute, body: Record<string, unknown>): Ask {
  return {
    route,
    model: typeof body.model === "string" ? body.model : DEFAULT_MODELS[route],
    stream: body.stream === true,
    includeUsage: prop(body.stream_options, "include_usage") === true,
    reasoning:
      route === "responses"
        ? isObject(body.reasoning)
        : route === "messages" && prop(body.thinking, "type") === "enabled",
    tool: firstToolName(route, body.tools),
  };
}

// ---------------------------------------------------------------------------------------------
// Answers. Builders return plain objects; `jsonAnswer` and `streamAnswer` serialise and cache them.

function sse(data: unknown): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}

function namedSse(type: string, data: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

// OpenAI Chat Completions

const CHAT_ID = "chatcmpl-fake-1";

function chatUsage() {
  return {
    prompt_tokens: 10,
    completion_tokens: 7,
    total_tokens: 17,
    prompt_tokens_details: { cached_tokens: 2 },
    // Chat Completions never shows reasoning, so the fake never produces any there.
    completion_tokens_details: { reasoning_tokens: 0 },
  };
}

function chatFinishReason(ask: Ask): string {
  return ask.tool === null ? "stop" : "tool_calls";
}

function chatCompletion(ask: Ask) {
  const toolCalls =
    ask.tool === null
      ? {}
      : {
          tool_calls: [
            {
              id: "call_fake_1",
              type: "function",
              function: { name: ask.tool, arguments: TOOL_ARGUMENTS },
            },
          ],
        };
  return {
    id: CHAT_ID,
    object: "chat.completion",
    created: CREATED,
    model: ask.model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: TEXT, refusal: null, annotations: [], ...toolCalls },
        logprobs: null,
        finish_reason: chatFinishReason(ask),
      },
    ],
    usage: chatUsage(),
  };
}

function chatChunks(ask: Ask): string[] {
  const envelope = {
    id: CHAT_ID,
    object: "chat.completion.chunk",
    created: CREATED,
    model: ask.model,
  };
  const chunk = (delta: object, finishReason: string | null = null): string =>
    sse({
      ...envelope,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    });

  const chunks = TEXT_DELTAS.map((content, i) =>
    chunk(i === 0 ? { role: "assistant", content } : { content }),
  );
  if (ask.tool !== null) {
    const call = { index: 0, id: "call_fake_1", type: "function" };
    chunks.push(chunk({ tool_calls: [{ ...call, function: { name: ask.tool, arguments: "" } }] }));
    for (const fragment of TOOL_ARGUMENT_FRAGMENTS) {
      chunks.push(chunk({ tool_calls: [{ index: 0, function: { arguments: fragment } }] }));
    }
  }
  chunks.push(chunk({}, chatFinishReason(ask)));
  if (ask.includeUsage) chunks.push(sse({ ...envelope, choices: [], usage: chatUsage() }));
  chunks.push("data: [DONE]\n\n");
  return chunks;
}

// OpenAI Responses

const REASONING_ITEM = {
  id: "rs_fake_1",
  type: "reasoning",
  summary: [{ type: "summary_text", text: REASONING_TEXT }],
};
const OUTPUT_TEXT = { type: "output_text", text: TEXT, annotations: [], logprobs: [] };
const MESSAGE_ITEM = {
  id: "msg_fake_1",
  type: "message",
  status: "completed",
  role: "assistant",
  content: [OUTPUT_TEXT],
};

function functionCallItem(name: string) {
  return {
    id: "fc_fake_1",
    type: "function_call",
    status: "completed",
    call_id: "call_fake_1",
    name,
    arguments: TOOL_ARGUMENTS,
  };
}

function responseOutput(ask: Ask): object[] {
  return [
    ...(ask.reasoning ? [REASONING_ITEM] : []),
    MESSAGE_ITEM,
    ...(ask.tool === null ? [] : [functionCallItem(ask.tool)]),
  ];
}

function responseObject(ask: Ask, status: "in_progress" | "completed") {
  const completed = status === "completed";
  return {
    id: "resp_fake_1",
    object: "response",
    created_at: CREATED,
    status,
    error: null,
    incomplete_details: null,
    model: ask.model,
    output: completed ? responseOutput(ask) : [],
    usage: completed
      ? {
          input_tokens: 10,
          input_tokens_details: { cached_tokens: 2 },
          output_tokens: 7,
          output_tokens_details: { reasoning_tokens: ask.reasoning ? 3 : 0 },
          total_tokens: 17,
        }
      : null,
  };
}

type Emit = (type: string, fields: object) => void;

// The SDK's stream accumulator indexes into parts announced by the `*.added` events, so each
// item is opened and closed the way the real API does it, not just its deltas sent.
function emitReasoningItem(emit: Emit, outputIndex: number): void {
  const at = { item_id: REASONING_ITEM.id, output_index: outputIndex, summary_index: 0 };
  emit("response.output_item.added", {
    output_index: outputIndex,
    item: { ...REASONING_ITEM, summary: [] },
  });
  emit("response.reasoning_summary_part.added", {
    ...at,
    part: { type: "summary_text", text: "" },
  });
  emit("response.reasoning_summary_text.delta", { ...at, delta: REASONING_TEXT });
  emit("response.reasoning_summary_text.done", { ...at, text: REASONING_TEXT });
  emit("response.reasoning_summary_part.done", { ...at, part: REASONING_ITEM.summary[0] });
  emit("response.output_item.done", { output_index: outputIndex, item: REASONING_ITEM });
}

function emitMessageItem(emit: Emit, outputIndex: number): void {
  const at = { item_id: MESSAGE_ITEM.id, output_index: outputIndex, content_index: 0 };
  emit("response.output_item.added", {
    output_index: outputIndex,
    item: { ...MESSAGE_ITEM, status: "in_progress", content: [] },
  });
  emit("response.content_part.added", { ...at, part: { ...OUTPUT_TEXT, text: "" } });
  for (const delta of TEXT_DELTAS) {
    emit("response.output_text.delta", { ...at, delta, logprobs: [] });
  }
  emit("response.output_text.done", { ...at, text: TEXT, logprobs: [] });
  emit("response.content_part.done", { ...at, part: OUTPUT_TEXT });
  emit("response.output_item.done", { output_index: outputIndex, item: MESSAGE_ITEM });
}

function emitFunctionCallItem(emit: Emit, outputIndex: number, name: string): void {
  const item = functionCallItem(name);
  const at = { item_id: item.id, output_index: outputIndex };
  emit("response.output_item.added", {
    output_index: outputIndex,
    item: { ...item, status: "in_progress", arguments: "" },
  });
  for (const delta of TOOL_ARGUMENT_FRAGMENTS) {
    emit("response.function_call_arguments.delta", { ...at, delta });
  }
  emit("response.function_call_arguments.done", { ...at, name, arguments: TOOL_ARGUMENTS });
  emit("response.output_item.done", { output_index: outputIndex, item });
}

function responseEvents(ask: Ask): string[] {
  const events: string[] = [];
  const emit: Emit = (type, fields) =>
    events.push(namedSse(type, { type, sequence_number: events.length, ...fields }));

  emit("response.created", { response: responseObject(ask, "in_progress") });
  emit("response.in_progress", { response: responseObject(ask, "in_progress") });
  let outputIndex = 0;
  if (ask.reasoning) emitReasoningItem(emit, outputIndex++);
  emitMessageItem(emit, outputIndex++);
  if (ask.tool !== null) emitFunctionCallItem(emit, outputIndex, ask.tool);
  emit("response.completed", { response: responseObject(ask, "completed") });
  return events;
}

// Anthropic Messages

const ANTHROPIC_USAGE = {
  input_tokens: 10,
  output_tokens: 7,
  cache_read_input_tokens: 2,
  cache_creation_input_tokens: 0,
};

function anthropicMessage(ask: Ask) {
  return {
    id: "msg_fake_1",
    type: "message",
    role: "assistant",
    model: ask.model,
    content: [
      ...(ask.reasoning
        ? [{ type: "thinking", thinking: REASONING_TEXT, signature: SIGNATURE }]
        : []),
      { type: "text", text: TEXT },
      ...(ask.tool === null
        ? []
        : [{ type: "tool_use", id: "toolu_fake_1", name: ask.tool, input: TOOL_INPUT }]),
    ],
    stop_reason: ask.tool === null ? "end_turn" : "tool_use",
    stop_sequence: null,
    usage: ANTHROPIC_USAGE,
  };
}

function messageEvents(ask: Ask): string[] {
  const events: string[] = [];
  const emit: Emit = (type, fields) => events.push(namedSse(type, { type, ...fields }));
  let index = 0;
  const block = (start: object, deltas: object[]): void => {
    emit("content_block_start", { index, content_block: start });
    for (const delta of deltas) emit("content_block_delta", { index, delta });
    emit("content_block_stop", { index });
    index++;
  };

  const message = anthropicMessage(ask);
  emit("message_start", {
    message: {
      ...message,
      content: [],
      stop_reason: null,
      usage: { ...ANTHROPIC_USAGE, output_tokens: 1 },
    },
  });
  if (ask.reasoning) {
    block({ type: "thinking", thinking: "", signature: "" }, [
      { type: "thinking_delta", thinking: REASONING_TEXT },
      { type: "signature_delta", signature: SIGNATURE },
    ]);
  }
  block(
    { type: "text", text: "" },
    TEXT_DELTAS.map((text) => ({ type: "text_delta", text })),
  );
  if (ask.tool !== null) {
    block(
      { type: "tool_use", id: "toolu_fake_1", name: ask.tool, input: {} },
      TOOL_ARGUMENT_FRAGMENTS.map((json) => ({ type: "input_json_delta", partial_json: json })),
    );
  }
  emit("message_delta", {
    delta: { stop_reason: message.stop_reason, stop_sequence: null },
    usage: { output_tokens: 7 },
  });
  emit("message_stop", {});
  return events;
}

// Fixed answers

const OPENAI_MODELS = Buffer.from(
  JSON.stringify({
    object: "list",
    data: [GPT_ID, "gpt-4o-mini"].map((id) => ({
      id,
      object: "model",
      created: CREATED,
      owned_by: "openai",
    })),
  }),
);
const ANTHROPIC_MODELS = Buffer.from(
  JSON.stringify({
    data: [
      {
        type: "model",
        id: CLAUDE_ID,
        display_name: "Claude Sonnet 4.5",
        created_at: "2025-09-29T00:00:00Z",
      },
    ],
    has_more: false,
    first_id: CLAUDE_ID,
    last_id: CLAUDE_ID,
  }),
);
const COUNT_TOKENS = Buffer.from(JSON.stringify({ input_tokens: 10 }));

// Caching. Keys are the Ask itself: its fields are all that an answer depends on.

const jsonAnswers = new Map<string, Buffer>();
const streamAnswers = new Map<string, string[]>();

function memo<T>(cache: Map<string, T>, key: string, build: () => T): T {
  let value = cache.get(key);
  if (value === undefined) {
    // The model name is echoed, so clients that vary it could otherwise grow the cache forever.
    if (cache.size >= MAX_CACHED) cache.clear();
    value = build();
    cache.set(key, value);
  }
  return value;
}

function jsonBody(ask: Ask): object {
  switch (ask.route) {
    case "chat":
      return chatCompletion(ask);
    case "responses":
      return responseObject(ask, "completed");
    case "messages":
      return anthropicMessage(ask);
  }
}

function streamEvents(ask: Ask): string[] {
  switch (ask.route) {
    case "chat":
      return chatChunks(ask);
    case "responses":
      return responseEvents(ask);
    case "messages":
      return messageEvents(ask);
  }
}

function jsonAnswer(ask: Ask): Buffer {
  return memo(jsonAnswers, JSON.stringify(ask), () => Buffer.from(JSON.stringify(jsonBody(ask))));
}

function streamAnswer(ask: Ask): string[] {
  return memo(streamAnswers, JSON.stringify(ask), () => streamEvents(ask));
}

// Errors

function openAIErrorType(status: number): string {
  if (status === 429) return "rate_limit_exceeded";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

const ANTHROPIC_ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  504: "timeout_error",
  529: "overloaded_error",
};

function anthropicErrorType(status: number): string {
  return ANTHROPIC_ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
}

function errorBody(provider: Provider, status: number, message: string): Buffer {
  const body =
    provider === "openai"
      ? { error: { message, type: openAIErrorType(status), param: null, code: null } }
      : { type: "error", error: { type: anthropicErrorType(status), message } };
  return Buffer.from(JSON.stringify(body));
}

// ---------------------------------------------------------------------------------------------
// Writing answers

const SSE_HEADERS = { "content-type": "text/event-stream", "cache-control": "no-cache" };

function sendJson(
  res: ServerResponse,
  status: number,
  body: Buffer,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": body.length,
    ...headers,
  });
  res.end(body);
}

function sendError(
  res: ServerResponse,
  provider: Provider,
  status: number,
  message: string,
  retryAfterSeconds?: number,
): void {
  const headers: Record<string, string> =
    retryAfterSeconds === undefined ? {} : { "retry-after": String(retryAfterSeconds) };
  sendJson(res, status, errorBody(provider, status, message), headers);
}

/**
 * Writes one event per `res.write`, so a client sees each event as it is produced. With
 * `cutAfter`, destroys the socket once that many events have reached it, to simulate a
 * provider dying mid-answer.
 */
function sendStream(
  res: ServerResponse,
  events: readonly string[],
  chunkDelayMs: number,
  cutAfter = Infinity,
): void {
  res.writeHead(200, SSE_HEADERS);
  let sent = 0;
  const step = (): void => {
    while (sent < events.length && !res.destroyed) {
      const event = events[sent++]!;
      if (sent >= cutAfter) {
        res.write(event, () => res.destroy());
        return;
      }
      res.write(event);
      if (chunkDelayMs > 0 && sent < events.length) {
        setTimeout(step, chunkDelayMs);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  step();
}

// ---------------------------------------------------------------------------------------------
// The server

class Upstream implements FakeUpstream {
  url = "";
  readonly requests: RecordedRequest[] = [];
  readonly server: Server;
  private latencyMs: number;
  private chunkDelayMs: number;
  private readonly faults: { fault: Fault; remaining: number }[] = [];

  constructor(options: FakeUpstreamOptions) {
    this.latencyMs = options.latencyMs ?? 0;
    this.chunkDelayMs = options.chunkDelayMs ?? 0;
    this.server = createServer((req, res) => this.receive(req, res));
    this.server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  }

  failNext(fault: Fault, count = 1): void {
    if (count > 0) this.faults.push({ fault, remaining: count });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  setLatency(latencyMs: number, chunkDelayMs = 0): void {
    this.latencyMs = latencyMs;
    this.chunkDelayMs = chunkDelayMs;
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.close((err) => (err ? reject(err) : resolve()));
      // Idle keep-alive and open streams would otherwise hold close() open.
      this.server.closeAllConnections();
    });
  }

  private receive(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const path = pathOf(req.url);
      const body = parseBody(chunks);
      this.record(req, path, body);
      if (this.latencyMs <= 0) {
        this.answer(req, res, path, body);
        return;
      }
      setTimeout(() => {
        if (!res.destroyed) this.answer(req, res, path, body);
      }, this.latencyMs);
    });
  }

  private record(req: IncomingMessage, path: string, body: unknown): void {
    this.requests.push({
      method: req.method ?? "",
      path,
      body: body === MALFORMED ? undefined : body,
      headers: req.headers,
    });
    if (this.requests.length > MAX_RECORDED) this.requests.shift();
  }

  private answer(req: IncomingMessage, res: ServerResponse, path: string, body: unknown): void {
    const route = ROUTES.get(`${req.method} ${path}`);
    const provider = providerOf(route, req.headers);
    if (route === undefined) {
      sendError(res, provider, 404, `Unknown endpoint: ${req.method} ${path}`);
    } else if (route === "models") {
      sendJson(res, 200, provider === "anthropic" ? ANTHROPIC_MODELS : OPENAI_MODELS);
    } else if (!isObject(body)) {
      sendError(res, provider, 400, "The request body must be a JSON object.");
    } else if (route === "count_tokens") {
      sendJson(res, 200, COUNT_TOKENS);
    } else {
      this.answerModel(res, provider, readAsk(route, body));
    }
  }

  private answerModel(res: ServerResponse, provider: Provider, ask: Ask): void {
    const fault = this.takeFault();
    if (fault?.kind === "reset") {
      res.destroy();
    } else if (fault?.kind === "status") {
      const message = `Fault injected by the fake upstream (HTTP ${fault.status}).`;
      sendError(res, provider, fault.status, message, fault.retryAfterSeconds);
    } else if (fault?.kind === "midstream" && !ask.stream) {
      sendError(res, provider, 500, "Fault injected by the fake upstream (HTTP 500).");
    } else if (ask.stream) {
      const cutAfter = fault?.kind === "midstream" ? 2 : Infinity;
      sendStream(res, streamAnswer(ask), this.chunkDelayMs, cutAfter);
    } else {
      sendJson(res, 200, jsonAnswer(ask));
    }
  }

  private takeFault(): Fault | undefined {
    const next = this.faults[0];
    if (next === undefined) return undefined;
    if (--next.remaining === 0) this.faults.shift();
    return next.fault;
  }
}

export async function startFakeUpstream(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const { port = 0, host = "127.0.0.1" } = options;
  const upstream = new Upstream(options);
  const { server } = upstream;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  upstream.url = `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`;
  return upstream;
}

// ---------------------------------------------------------------------------------------------
// Command line

function nonNegativeInteger(flag: string, value: string | undefined): number {
  const number = Number(value ?? 0);
  if (!Number.isInteger(number) || number < 0) {
    throw new Error(`${flag} must be a non-negative integer, got ${value}`);
  }
  return number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { port: { type: "string" }, "latency-ms": { type: "string" } },
  });
  const upstream = await startFakeUpstream({
    port: nonNegativeInteger("--port", values.port),
    latencyMs: nonNegativeInteger("--latency-ms", values["latency-ms"]),
  });
  console.log(`fake upstream listening on ${upstream.url}`);
  // Exit explicitly: a pending latency or chunk timer should not hold a stopped fake open.
  const stop = (): void => void upstream.close().finally(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) await main();
