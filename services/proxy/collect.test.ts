import test from "ava";
import { collectorFor, type Collected, type Endpoint } from "./collect.js";
import { SseParser } from "./sse.js";

const sse = (events: [string | undefined, unknown][]) =>
  events
    .map(
      ([event, data]) =>
        `${event ? `event: ${event}\n` : ""}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`,
    )
    .join("");

const anthropicStream = sse([
  [
    "message_start",
    {
      type: "message_start",
      message: {
        usage: {
          input_tokens: 12,
          output_tokens: 1,
          cache_read_input_tokens: 3,
          cache_creation_input_tokens: 4,
        },
      },
    },
  ],
  [
    "content_block_start",
    { type: "content_block_start", index: 0, content_block: { type: "thinking", thinking: "" } },
  ],
  [
    "content_block_delta",
    {
      type: "content_block_delta",
      index: 0,
      delta: { type: "thinking_delta", thinking: "Hmm, é…" },
    },
  ],
  [
    "content_block_start",
    { type: "content_block_start", index: 1, content_block: { type: "text", text: "" } },
  ],
  [
    "content_block_delta",
    { type: "content_block_delta", index: 1, delta: { type: "text_delta", text: "Bonjour " } },
  ],
  [
    "content_block_delta",
    { type: "content_block_delta", index: 1, delta: { type: "text_delta", text: "👋" } },
  ],
  [
    "content_block_start",
    {
      type: "content_block_start",
      index: 2,
      content_block: { type: "tool_use", id: "toolu_1", name: "get_weather", input: {} },
    },
  ],
  [
    "content_block_delta",
    {
      type: "content_block_delta",
      index: 2,
      delta: { type: "input_json_delta", partial_json: '{"city":' },
    },
  ],
  [
    "content_block_delta",
    {
      type: "content_block_delta",
      index: 2,
      delta: { type: "input_json_delta", partial_json: '"Paris"}' },
    },
  ],
  [
    "message_delta",
    { type: "message_delta", delta: { stop_reason: "tool_use" }, usage: { output_tokens: 9 } },
  ],
  ["message_stop", { type: "message_stop" }],
]);

const chatStream = sse([
  [undefined, { choices: [{ index: 0, delta: { role: "assistant", content: "Hel" } }] }],
  [undefined, { choices: [{ index: 0, delta: { content: "lo" } }] }],
  [
    undefined,
    {
      choices: [
        {
          index: 0,
          delta: {
            tool_calls: [
              {
                index: 0,
                id: "call_1",
                type: "function",
                function: { name: "f", arguments: '{"a":' },
              },
            ],
          },
        },
      ],
    },
  ],
  [
    undefined,
    {
      choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: "1}" } }] } }],
    },
  ],
  [undefined, { choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] }],
  [
    undefined,
    {
      choices: [],
      usage: {
        prompt_tokens: 5,
        completion_tokens: 6,
        prompt_tokens_details: { cached_tokens: 1 },
        completion_tokens_details: { reasoning_tokens: 2 },
      },
    },
  ],
  [undefined, "[DONE]"],
]);

function collect(endpoint: Endpoint, bytes: Buffer, cuts: number[]): Collected {
  const collector = collectorFor(endpoint);
  const parser = new SseParser();
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    parser.push(bytes.subarray(from, cut), (e) => collector.event(e));
    from = cut;
  }
  return collector.result();
}

test("an Anthropic stream yields text, thinking, the tool call, stop reason and usage", (t) => {
  const result = collect("messages", Buffer.from(anthropicStream), []);
  t.is(result.text, "Bonjour 👋");
  t.is(result.reasoning, "Hmm, é…");
  t.deepEqual(result.toolCalls, [
    { id: "toolu_1", name: "get_weather", arguments: '{"city":"Paris"}' },
  ]);
  t.is(result.stopReason, "tool_use");
  t.deepEqual(result.usage, {
    inputTokens: 12,
    outputTokens: 9,
    cacheReadTokens: 3,
    cacheWriteTokens: 4,
    reasoningTokens: 0,
  });
});

test("a Chat Completions stream yields text, the assembled tool call and usage", (t) => {
  const result = collect("chat", Buffer.from(chatStream), []);
  t.is(result.text, "Hello");
  t.deepEqual(result.toolCalls, [{ id: "call_1", name: "f", arguments: '{"a":1}' }]);
  t.is(result.stopReason, "tool_calls");
  t.deepEqual(result.usage, {
    inputTokens: 5,
    outputTokens: 6,
    cacheReadTokens: 1,
    cacheWriteTokens: 0,
    reasoningTokens: 2,
  });
});

test("the result is the same wherever the network cuts the stream, even inside a UTF-8 character", (t) => {
  for (const [endpoint, text] of [
    ["messages", anthropicStream],
    ["chat", chatStream],
  ] as const) {
    const bytes = Buffer.from(text);
    const whole = collect(endpoint, bytes, []);
    for (let cut = 1; cut < bytes.length; cut++)
      t.deepEqual(collect(endpoint, bytes, [cut]), whole, `${endpoint} cut at ${cut}`);
    const everyByte = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
    t.deepEqual(collect(endpoint, bytes, everyByte), whole, `${endpoint} one byte at a time`);
  }
});

test("CRLF line endings are read like LF", (t) => {
  const crlf = Buffer.from(chatStream.replace(/\n/g, "\r\n"));
  const expected = collect("chat", Buffer.from(chatStream), []);
  for (let cut = 1; cut < crlf.length; cut++)
    t.deepEqual(collect("chat", crlf, [cut]), expected, `cut at ${cut}`);
});

test("an error event inside a 200 stream is collected as an error", (t) => {
  const stream =
    anthropicStream.split("event: message_delta")[0] +
    sse([["error", { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }]]);
  t.is(collect("messages", Buffer.from(stream), []).error, "overloaded_error: Overloaded");
});

test("lines ending in LF and in CRLF within one stream are read alike, without their CR", (t) => {
  const lf = Buffer.from(chatStream);
  // Its events are one data line each: these endings make their empty lines LF-LF, CRLF-LF,
  // LF-CRLF and CRLF-CRLF in turn.
  const crlf = [false, false, true, false, false, true, true, true];
  let n = 0;
  const mixed = Buffer.from(chatStream.replace(/\n/g, () => (crlf[n++ % 8] ? "\r\n" : "\n")));
  const expected = collect("chat", lf, []);
  for (let cut = 1; cut < mixed.length; cut++)
    t.deepEqual(collect("chat", mixed, [cut]), expected, `cut at ${cut}`);
});
