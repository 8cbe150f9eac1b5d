import test, { type ExecutionContext } from "ava";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { startFakeUpstream, type FakeUpstream } from "../scripts/fake-upstream.js";

const text = "Hello from the fake upstream.";
const chatTool = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" } } },
  },
} as const;
const anthropicTool = {
  name: "get_weather",
  input_schema: { type: "object", properties: { city: { type: "string" } } },
} as const;
const hello = [{ role: "user", content: "Hello" }] as const;

/** A fake per test: faults and latency are per instance, and the tests run concurrently. */
async function fake(t: ExecutionContext): Promise<FakeUpstream> {
  const upstream = await startFakeUpstream();
  t.teardown(() => upstream.close());
  return upstream;
}

function clients(upstream: FakeUpstream) {
  return {
    openai: new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: "sk-fake", maxRetries: 0 }),
    anthropic: new Anthropic({ baseURL: upstream.url, apiKey: "sk-ant-fake", maxRetries: 0 }),
  };
}

test("OpenAI chat completion with a tool: text, one call to the first tool, usage, echoed model", async (t) => {
  const upstream = await fake(t);
  const { openai } = clients(upstream);
  const completion = await openai.chat.completions.create({
    model: "gpt-test",
    messages: [...hello],
    tools: [chatTool],
  });
  t.is(completion.model, "gpt-test");
  const choice = completion.choices[0]!;
  t.is(choice.finish_reason, "tool_calls");
  t.is(choice.message.content, text);
  t.deepEqual(choice.message.tool_calls, [
    {
      id: "call_fake_1",
      type: "function",
      function: { name: "get_weather", arguments: '{"city":"Paris"}' },
    },
  ]);
  t.deepEqual(completion.usage, {
    prompt_tokens: 10,
    completion_tokens: 7,
    total_tokens: 17,
    prompt_tokens_details: { cached_tokens: 2 },
    completion_tokens_details: { reasoning_tokens: 0 },
  });
  const recorded = upstream.requests.at(-1)!;
  t.is(recorded.method, "POST");
  t.is(recorded.path, "/v1/chat/completions");
  t.like(recorded.body, { model: "gpt-test" });
  t.is(recorded.headers.authorization, "Bearer sk-fake");
});

test("OpenAI streamed chat completion accumulates into the text, the Paris tool call and usage", async (t) => {
  const { openai } = clients(await fake(t));
  const stream = openai.chat.completions.stream({
    model: "gpt-test",
    messages: [...hello],
    tools: [chatTool],
    stream_options: { include_usage: true },
  });
  const deltas: string[] = [];
  stream.on("content", (delta) => deltas.push(delta));
  const completion = await stream.finalChatCompletion();
  t.deepEqual(deltas, ["Hello", " from", " the", " fake", " upstream."]);
  const choice = completion.choices[0]!;
  t.is(choice.finish_reason, "tool_calls");
  t.is(choice.message.content, text);
  const call = choice.message.tool_calls![0]!;
  t.is(call.id, "call_fake_1");
  t.is(call.type === "function" && call.function.name, "get_weather");
  t.deepEqual(call.type === "function" && JSON.parse(call.function.arguments), { city: "Paris" });
  t.is(completion.usage?.total_tokens, 17);
});

test("OpenAI Responses call with reasoning and a tool: reasoning, message and function call items", async (t) => {
  const { openai } = clients(await fake(t));
  const response = await openai.responses.create({
    model: "gpt-test",
    input: "Hello",
    reasoning: { effort: "low" },
    tools: [{ type: "function", name: "get_weather", parameters: {}, strict: false }],
  });
  t.is(response.status, "completed");
  t.is(response.model, "gpt-test");
  t.is(response.output_text, text);
  t.deepEqual(
    response.output.map((item) => item.type),
    ["reasoning", "message", "function_call"],
  );
  t.like(response.output[0], { summary: [{ type: "summary_text", text: "Let me think." }] });
  t.like(response.output[2], {
    id: "fc_fake_1",
    call_id: "call_fake_1",
    name: "get_weather",
    arguments: '{"city":"Paris"}',
  });
  t.deepEqual(response.usage, {
    input_tokens: 10,
    input_tokens_details: { cached_tokens: 2 },
    output_tokens: 7,
    output_tokens_details: { reasoning_tokens: 3 },
    total_tokens: 17,
  });
});

test("OpenAI Responses stream accumulates into the same completed response", async (t) => {
  const { openai } = clients(await fake(t));
  const stream = openai.responses.stream({
    model: "gpt-test",
    input: "Hello",
    reasoning: { effort: "low" },
    tools: [{ type: "function", name: "get_weather", parameters: {}, strict: false }],
  });
  const sequence: number[] = [];
  stream.on("event", (event) => sequence.push(event.sequence_number));
  const response = await stream.finalResponse();
  t.deepEqual(
    sequence,
    sequence.map((_, i) => i),
  );
  t.is(response.status, "completed");
  t.is(response.output_text, text);
  t.like(response.output[0], { type: "reasoning", summary: [{ text: "Let me think." }] });
  t.like(response.output[2], { type: "function_call", arguments: '{"city":"Paris"}' });
  t.is(response.usage?.output_tokens_details.reasoning_tokens, 3);
});

test("Anthropic message with thinking and a tool: thinking, text and tool_use blocks, tool_use stop", async (t) => {
  const { anthropic } = clients(await fake(t));
  const message = await anthropic.messages.create({
    model: "claude-test",
    max_tokens: 2048,
    thinking: { type: "enabled", budget_tokens: 1024 },
    tools: [anthropicTool],
    messages: [...hello],
  });
  t.is(message.model, "claude-test");
  t.is(message.stop_reason, "tool_use");
  t.deepEqual(message.content, [
    { type: "thinking", thinking: "Let me think.", signature: "sig_fake" },
    { type: "text", text },
    { type: "tool_use", id: "toolu_fake_1", name: "get_weather", input: { city: "Paris" } },
  ]);
  t.deepEqual(message.usage, {
    input_tokens: 10,
    output_tokens: 7,
    cache_read_input_tokens: 2,
    cache_creation_input_tokens: 0,
  });
});

test("Anthropic stream accumulates into the same final message via finalMessage()", async (t) => {
  const { anthropic } = clients(await fake(t));
  const stream = anthropic.messages.stream({
    model: "claude-test",
    max_tokens: 2048,
    thinking: { type: "enabled", budget_tokens: 1024 },
    tools: [anthropicTool],
    messages: [...hello],
  });
  const deltas: string[] = [];
  stream.on("text", (delta) => deltas.push(delta));
  const message = await stream.finalMessage();
  t.deepEqual(deltas, ["Hello", " from", " the", " fake", " upstream."]);
  t.is(message.stop_reason, "tool_use");
  t.like(message.content[0], {
    type: "thinking",
    thinking: "Let me think.",
    signature: "sig_fake",
  });
  t.like(message.content[1], { type: "text", text });
  t.like(message.content[2], { type: "tool_use", id: "toolu_fake_1", input: { city: "Paris" } });
  t.like(message.usage, { input_tokens: 10, output_tokens: 7, cache_read_input_tokens: 2 });
});

test("Anthropic without tools or thinking answers text only with end_turn", async (t) => {
  const { anthropic } = clients(await fake(t));
  const message = await anthropic.messages.create({
    model: "claude-test",
    max_tokens: 100,
    messages: [...hello],
  });
  t.is(message.stop_reason, "end_turn");
  t.deepEqual(message.content, [{ type: "text", text }]);
});

test("models lists and count_tokens answer each SDK on the shared /v1/models path", async (t) => {
  const { openai, anthropic } = clients(await fake(t));
  const openaiModels = await openai.models.list();
  t.deepEqual(
    openaiModels.data.map((model) => model.id),
    ["gpt-4o", "gpt-4o-mini"],
  );
  const anthropicModels = await anthropic.models.list();
  t.deepEqual(
    anthropicModels.data.map((model) => model.display_name),
    ["Claude Sonnet 4.5"],
  );
  const count = await anthropic.messages.countTokens({
    model: "claude-test",
    messages: [...hello],
  });
  t.is(count.input_tokens, 10);
});

test("a 429 fault reaches both SDKs as an error with status 429 and the retry-after header", async (t) => {
  const upstream = await fake(t);
  const { openai, anthropic } = clients(upstream);
  upstream.failNext({ kind: "status", status: 429, retryAfterSeconds: 7 }, 2);

  const openaiError = await t.throwsAsync(
    openai.chat.completions.create({ model: "gpt-test", messages: [...hello] }),
    { instanceOf: OpenAI.APIError },
  );
  t.is(openaiError?.status, 429);
  t.is(openaiError?.headers?.get("retry-after"), "7");
  t.like(openaiError?.error, { type: "rate_limit_exceeded" });

  const anthropicError = await t.throwsAsync(
    anthropic.messages.create({ model: "claude-test", max_tokens: 100, messages: [...hello] }),
    { instanceOf: Anthropic.APIError },
  );
  t.is(anthropicError?.status, 429);
  t.like(anthropicError?.error, { type: "error", error: { type: "rate_limit_error" } });

  // The fault was for two requests only.
  const completion = await openai.chat.completions.create({
    model: "gpt-test",
    messages: [...hello],
  });
  t.is(completion.choices[0]?.message.content, text);
});

test("a reset fault drops the connection without an answer", async (t) => {
  const upstream = await fake(t);
  const { openai } = clients(upstream);
  upstream.failNext({ kind: "reset" });
  await t.throwsAsync(openai.chat.completions.create({ model: "gpt-test", messages: [...hello] }), {
    instanceOf: OpenAI.APIConnectionError,
  });
});

test("a midstream fault cuts a stream after partial data, and is a 500 without streaming", async (t) => {
  const upstream = await fake(t);
  const { openai } = clients(upstream);
  upstream.failNext({ kind: "midstream" }, 2);

  const stream = await openai.chat.completions.create({
    model: "gpt-test",
    messages: [...hello],
    stream: true,
  });
  const received: string[] = [];
  await t.throwsAsync(async () => {
    for await (const chunk of stream) received.push(chunk.choices[0]?.delta.content ?? "");
  });
  t.deepEqual(received, ["Hello", " from"]);

  const error = await t.throwsAsync(
    openai.chat.completions.create({ model: "gpt-test", messages: [...hello] }),
    { instanceOf: OpenAI.APIError },
  );
  t.is(error?.status, 500);
});

test("unknown paths are 404 and malformed JSON is 400, in the provider's error format", async (t) => {
  const upstream = await fake(t);
  const unknown = await fetch(`${upstream.url}/v1/nothing`, { headers: { "x-api-key": "k" } });
  t.is(unknown.status, 404);
  t.like(await unknown.json(), { type: "error", error: { type: "not_found_error" } });

  const malformed = await fetch(`${upstream.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{not json",
  });
  t.is(malformed.status, 400);
  t.is(malformed.headers.get("content-type"), "application/json");
  t.like(await malformed.json(), { error: { type: "invalid_request_error", param: null } });
  t.is(upstream.requests.at(-1)?.body, undefined);
});

test("a streamed answer is sent event by event: the first chunk arrives well before the last", async (t) => {
  const upstream = await fake(t);
  const { openai } = clients(upstream);
  const chunkDelayMs = 50;
  upstream.setLatency(0, chunkDelayMs);

  const stream = await openai.chat.completions.create({
    model: "gpt-test",
    messages: [...hello],
    stream: true,
  });
  const arrivals: { at: number; content: string | null | undefined }[] = [];
  for await (const chunk of stream) {
    arrivals.push({ at: performance.now(), content: chunk.choices[0]?.delta.content });
  }
  // Five text chunks and the finish chunk, with a pause between each.
  t.deepEqual(
    arrivals.map((arrival) => arrival.content),
    ["Hello", " from", " the", " fake", " upstream.", undefined],
  );
  const spread = arrivals.at(-1)!.at - arrivals[0]!.at;
  t.true(spread >= (arrivals.length - 1) * chunkDelayMs * 0.8, `spread ${spread} ms`);
});

test("requests keeps only the newest 1000", async (t) => {
  const upstream = await fake(t);
  const { openai } = clients(upstream);
  for (let i = 0; i < 1005; i++) await openai.models.list();
  t.is(upstream.requests.length, 1000);
  t.is(upstream.requests[0]?.path, "/v1/models");
});
