import type { SseEvent } from "./sse.js";
import type { Usage } from "../kit/usage.js";
import type { ToolCall } from "./records.js";

/** What a response said, gathered beside the bytes going to the client. */
export interface Collected {
  text: string;
  reasoning: string;
  toolCalls: ToolCall[];
  stopReason: string;
  usage: Usage;
  /** An error the provider reported inside a 200 stream. */
  error: string;
}

export interface Collector {
  /** A whole JSON answer. */
  json(body: unknown): void;
  /** One event of a streamed answer. */
  event(event: SseEvent): void;
  result(): Collected;
}

export type Endpoint = "chat" | "responses" | "messages" | "count_tokens" | "models";

export function collectorFor(endpoint: Endpoint): Collector {
  if (endpoint === "chat") return new ChatCollector();
  if (endpoint === "responses") return new ResponsesCollector();
  return new MessagesCollector();
}

const noUsage = (): Usage => ({
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
});

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === "object" ? (v as Json) : {});
const str = (v: unknown): string => (typeof v === "string" ? v : "");
const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function parse(data: string): Json | undefined {
  try {
    return obj(JSON.parse(data));
  } catch {
    return undefined;
  }
}

function errorText(e: unknown): string {
  const err = obj(e);
  return [str(err.type) || str(err.code), str(err.message)].filter(Boolean).join(": ") || "error";
}

/** OpenAI Chat Completions. */
class ChatCollector implements Collector {
  private readonly c: Collected = {
    text: "",
    reasoning: "",
    toolCalls: [],
    stopReason: "",
    usage: noUsage(),
    error: "",
  };

  json(body: unknown): void {
    const choice = obj(list(obj(body).choices)[0]);
    const message = obj(choice.message);
    this.c.text = str(message.content);
    this.c.reasoning = str(message.reasoning_content);
    this.c.toolCalls = list(message.tool_calls).map((t) => {
      const call = obj(t);
      const fn = obj(call.function);
      return { id: str(call.id), name: str(fn.name), arguments: str(fn.arguments) };
    });
    this.c.stopReason = str(choice.finish_reason);
    this.usage(obj(body).usage);
  }

  event(event: SseEvent): void {
    if (event.data === "[DONE]") return;
    const chunk = parse(event.data);
    if (!chunk) return;
    if (chunk.error) this.c.error = errorText(chunk.error);
    for (const raw of list(chunk.choices)) {
      const choice = obj(raw);
      const delta = obj(choice.delta);
      this.c.text += str(delta.content);
      this.c.reasoning += str(delta.reasoning_content);
      for (const t of list(delta.tool_calls)) {
        const part = obj(t);
        const index = num(part.index);
        const call = (this.c.toolCalls[index] ??= { id: "", name: "", arguments: "" });
        const fn = obj(part.function);
        call.id ||= str(part.id);
        call.name ||= str(fn.name);
        call.arguments += str(fn.arguments);
      }
      if (choice.finish_reason) this.c.stopReason = str(choice.finish_reason);
    }
    if (chunk.usage) this.usage(chunk.usage);
  }

  private usage(u: unknown): void {
    const usage = obj(u);
    this.c.usage = {
      inputTokens: num(usage.prompt_tokens),
      outputTokens: num(usage.completion_tokens),
      cacheReadTokens: num(obj(usage.prompt_tokens_details).cached_tokens),
      cacheWriteTokens: 0,
      reasoningTokens: num(obj(usage.completion_tokens_details).reasoning_tokens),
    };
  }

  result(): Collected {
    return { ...this.c, toolCalls: this.c.toolCalls.filter(Boolean) };
  }
}

/** OpenAI Responses. */
class ResponsesCollector implements Collector {
  private c: Collected = {
    text: "",
    reasoning: "",
    toolCalls: [],
    stopReason: "",
    usage: noUsage(),
    error: "",
  };

  json(body: unknown): void {
    const response = obj(body);
    const c: Collected = {
      text: "",
      reasoning: "",
      toolCalls: [],
      stopReason: str(response.status),
      usage: noUsage(),
      error: "",
    };
    for (const raw of list(response.output)) {
      const item = obj(raw);
      if (item.type === "message") {
        for (const part of list(item.content))
          if (obj(part).type === "output_text") c.text += str(obj(part).text);
      } else if (item.type === "reasoning") {
        for (const part of list(item.summary)) c.reasoning += str(obj(part).text);
      } else if (item.type === "function_call") {
        c.toolCalls.push({
          id: str(item.call_id),
          name: str(item.name),
          arguments: str(item.arguments),
        });
      }
    }
    const usage = obj(response.usage);
    c.usage = {
      inputTokens: num(usage.input_tokens),
      outputTokens: num(usage.output_tokens),
      cacheReadTokens: num(obj(usage.input_tokens_details).cached_tokens),
      cacheWriteTokens: 0,
      reasoningTokens: num(obj(usage.output_tokens_details).reasoning_tokens),
    };
    if (response.error) c.error = errorText(response.error);
    this.c = c;
  }

  event(event: SseEvent): void {
    const e = parse(event.data);
    if (!e) return;
    switch (e.type) {
      case "response.output_text.delta":
        this.c.text += str(e.delta);
        break;
      case "response.reasoning_summary_text.delta":
        this.c.reasoning += str(e.delta);
        break;
      case "response.output_item.done": {
        const item = obj(e.item);
        if (item.type === "function_call")
          this.c.toolCalls.push({
            id: str(item.call_id),
            name: str(item.name),
            arguments: str(item.arguments),
          });
        break;
      }
      // The final event carries the whole response: it replaces what the deltas built.
      case "response.completed":
      case "response.incomplete":
      case "response.failed":
        this.json(e.response);
        break;
      case "error":
        this.c.error = errorText(e.error ?? e);
        break;
    }
  }

  result(): Collected {
    return this.c;
  }
}

/** Anthropic Messages (and count_tokens, which has only usage). */
class MessagesCollector implements Collector {
  private readonly c: Collected = {
    text: "",
    reasoning: "",
    toolCalls: [],
    stopReason: "",
    usage: noUsage(),
    error: "",
  };
  private readonly blocks = new Map<number, ToolCall>();

  json(body: unknown): void {
    const message = obj(body);
    for (const raw of list(message.content)) {
      const block = obj(raw);
      if (block.type === "text") this.c.text += str(block.text);
      else if (block.type === "thinking") this.c.reasoning += str(block.thinking);
      else if (block.type === "tool_use" || block.type === "server_tool_use") {
        this.c.toolCalls.push({
          id: str(block.id),
          name: str(block.name),
          arguments: JSON.stringify(block.input ?? {}),
        });
      }
    }
    this.c.stopReason = str(message.stop_reason);
    this.usage(message.usage ?? { input_tokens: message.input_tokens });
  }

  event(event: SseEvent): void {
    const e = parse(event.data);
    if (!e) return;
    switch (e.type) {
      case "message_start":
        this.usage(obj(e.message).usage);
        break;
      case "content_block_start": {
        const block = obj(e.content_block);
        if (block.type === "tool_use" || block.type === "server_tool_use") {
          const call = { id: str(block.id), name: str(block.name), arguments: "" };
          this.blocks.set(num(e.index), call);
          this.c.toolCalls.push(call);
        }
        break;
      }
      case "content_block_delta": {
        const delta = obj(e.delta);
        if (delta.type === "text_delta") this.c.text += str(delta.text);
        else if (delta.type === "thinking_delta") this.c.reasoning += str(delta.thinking);
        else if (delta.type === "input_json_delta") {
          const call = this.blocks.get(num(e.index));
          if (call) call.arguments += str(delta.partial_json);
        }
        break;
      }
      case "message_delta":
        this.c.stopReason = str(obj(e.delta).stop_reason) || this.c.stopReason;
        this.c.usage.outputTokens = num(obj(e.usage).output_tokens) || this.c.usage.outputTokens;
        break;
      case "error":
        this.c.error = errorText(e.error);
        break;
    }
  }

  private usage(u: unknown): void {
    const usage = obj(u);
    this.c.usage = {
      inputTokens: num(usage.input_tokens),
      outputTokens: num(usage.output_tokens),
      cacheReadTokens: num(usage.cache_read_input_tokens),
      cacheWriteTokens: num(usage.cache_creation_input_tokens),
      reasoningTokens: 0,
    };
  }

  result(): Collected {
    return this.c;
  }
}
