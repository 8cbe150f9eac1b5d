import test from "ava";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { auditDefinition } from "../services/audit/run.js";
import { identityDefinition } from "../services/identity/run.js";
import { policyDefinition } from "../services/policy/run.js";
import { proxyDefinition } from "../services/proxy/run.js";
import { startFakeUpstream, type FakeUpstream } from "../scripts/fake-upstream.js";
import { readContentRule, recordsOf, type AuditReader } from "./support/records.js";
import { orgWithAgent } from "./support/org-setup.js";
import { startServices, type Harness } from "./support/runtime.js";

let fake: FakeUpstream;
let h: Harness;
let agentToken: string;
let reader: AuditReader;
let openai: OpenAI;
let anthropic: Anthropic;

const weather = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Weather",
    parameters: { type: "object", properties: { city: { type: "string" } } },
  },
};

test.before(async () => {
  fake = await startFakeUpstream();
  h = await startServices(
    [identityDefinition, policyDefinition, auditDefinition, proxyDefinition],
    {
      AIRLOCK_OPENAI_BASE_URL: `${fake.url}/v1`,
      AIRLOCK_OPENAI_API_KEY: "sk-upstream-openai-key",
      AIRLOCK_ANTHROPIC_BASE_URL: fake.url,
      AIRLOCK_ANTHROPIC_API_KEY: "sk-ant-upstream-key",
    },
  );
  const org = await orgWithAgent(h.runtime.server.url, {
    org: "sdk",
    workspace: "web",
    scopes: ["llm", "repo:github.com/sdk/app"],
    extraRules: readContentRule,
  });
  agentToken = org.agentToken;
  reader = { url: h.runtime.server.url, token: org.adminToken };
  const llm = h.runtime.endpoints.llm!;
  openai = new OpenAI({ apiKey: agentToken, baseURL: `${llm}/openai/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: agentToken, baseURL: `${llm}/anthropic`, maxRetries: 0 });
});
test.after.always(async () => {
  await h?.close();
  await fake?.close();
});

test.serial(
  "OpenAI chat, not streamed, with a tool call: the SDK gets the answer; the records match it",
  async (t) => {
    const completion = await openai.chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "Weather in Paris? (chat, plain)" }],
      tools: [weather],
    });
    const call = completion.choices[0]!.message.tool_calls![0]!;
    t.is(call.type === "function" ? call.function.arguments : "", '{"city":"Paris"}');
    const upstream = fake.requests.at(-1)!;
    t.is(
      upstream.headers.authorization,
      "Bearer sk-upstream-openai-key",
      "the provider key goes upstream",
    );
    t.false(JSON.stringify(upstream.headers).includes(agentToken), "the caller's token never does");
    const { request, response } = await recordsOf(reader, (r) =>
      JSON.stringify(r.content.body).includes("(chat, plain)"),
    );
    t.is(request.model, "gpt-4o");
    t.is(request.provider, "openai");
    t.is(request.principalKind, "agent");
    t.is(request.workspace, "web");
    t.deepEqual(request.repositories, ["github.com/sdk/app"]);
    t.is(response.status, "ok");
    t.is(response.httpStatus, 200);
    t.is(response.stopReason, completion.choices[0]!.finish_reason);
    t.deepEqual(response.content.toolCalls, [
      { id: call.id, name: "get_weather", arguments: '{"city":"Paris"}' },
    ]);
    t.is(response.usage.inputTokens, completion.usage!.prompt_tokens);
    t.is(response.usage.outputTokens, completion.usage!.completion_tokens);
    t.is(response.usage.cacheReadTokens, completion.usage!.prompt_tokens_details!.cached_tokens!);
  },
);

test.serial(
  "OpenAI chat, streamed: the SDK assembles the text and the tool call; the records hold the same",
  async (t) => {
    const stream = await openai.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Stream please (chat, stream)" }],
      tools: [weather],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let args = "";
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      args += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? "";
      usage = chunk.usage ?? usage;
    }
    t.is(text, "Hello from the fake upstream.");
    t.is(args, '{"city":"Paris"}');
    const { request, response } = await recordsOf(reader, (r) =>
      JSON.stringify(r.content.body).includes("(chat, stream)"),
    );
    t.true(request.stream);
    t.is(response.content.text, text);
    t.is(response.content.toolCalls[0]!.arguments, args);
    t.is(response.usage.outputTokens, usage!.completion_tokens);
    t.true(response.ttfbMs >= 0 && response.ttfbMs <= response.latencyMs);
  },
);

test.serial(
  "OpenAI Responses with reasoning, streamed and not: text, reasoning and usage are recorded",
  async (t) => {
    const plain = await openai.responses.create({
      model: "gpt-4o",
      input: "Think first (responses, plain)",
      reasoning: { effort: "low" },
    });
    const { response } = await recordsOf(reader, (r) =>
      JSON.stringify(r.content.body).includes("(responses, plain)"),
    );
    t.is(response.content.text, plain.output_text);
    t.is(response.content.reasoning, "Let me think.");
    t.is(response.usage.reasoningTokens, plain.usage!.output_tokens_details.reasoning_tokens);

    const stream = openai.responses.stream({
      model: "gpt-4o",
      input: "Think first (responses, stream)",
      reasoning: { effort: "low" },
    });
    const final = await stream.finalResponse();
    const streamed = await recordsOf(reader, (r) =>
      JSON.stringify(r.content.body).includes("(responses, stream)"),
    );
    t.is(streamed.response.content.text, final.output_text);
    t.is(streamed.response.status, "ok");
  },
);

test.serial(
  "Anthropic messages with thinking and a tool, streamed and not: the records match what the SDK saw",
  async (t) => {
    const tools = [
      {
        name: "get_weather",
        description: "Weather",
        input_schema: { type: "object" as const, properties: { city: { type: "string" } } },
      },
    ];
    const message = await anthropic.messages.create({
      model: "claude-sonnet-5",
      max_tokens: 1024,
      thinking: { type: "enabled", budget_tokens: 1024 },
      tools,
      messages: [{ role: "user", content: "Weather? (anthropic, plain)" }],
    });
    const toolUse = message.content.find((b) => b.type === "tool_use")!;
    const { request, response } = await recordsOf(reader, (r) =>
      JSON.stringify(r.content.body).includes("(anthropic, plain)"),
    );
    t.is(request.api, "anthropic");
    t.is(fake.requests.at(-1)!.headers["x-api-key"], "sk-ant-upstream-key");
    t.is(response.stopReason, message.stop_reason!);
    t.is(response.content.reasoning, "Let me think.");
    t.deepEqual(response.content.toolCalls, [
      {
        id: toolUse.type === "tool_use" ? toolUse.id : "",
        name: "get_weather",
        arguments: '{"city":"Paris"}',
      },
    ]);
    t.is(response.usage.inputTokens, message.usage.input_tokens);
    t.is(response.usage.outputTokens, message.usage.output_tokens);

    const stream = anthropic.messages.stream({
      model: "claude-sonnet-5",
      max_tokens: 1024,
      tools,
      messages: [{ role: "user", content: "Weather? (anthropic, stream)" }],
    });
    const final = await stream.finalMessage();
    const streamed = await recordsOf(reader, (r) =>
      JSON.stringify(r.content.body).includes("(anthropic, stream)"),
    );
    const text = final.content
      .filter((b) => b.type === "text")
      .map((b) => (b.type === "text" ? b.text : ""))
      .join("");
    t.is(streamed.response.content.text, text);
    t.is(streamed.response.content.toolCalls[0]!.arguments, '{"city":"Paris"}');
    t.is(streamed.response.usage.outputTokens, final.usage.output_tokens);
    t.is(streamed.response.stopReason, final.stop_reason!);
  },
);

test.serial(
  "count_tokens and model lists go through, and a model list shows only models policy allows",
  async (t) => {
    const counted = await anthropic.messages.countTokens({
      model: "claude-sonnet-5",
      messages: [{ role: "user", content: "count me" }],
    });
    t.is(counted.input_tokens, 10);
    const models = await openai.models.list();
    t.deepEqual(models.data.map((m) => m.id).sort(), ["gpt-4o", "gpt-4o-mini"]);
    const claude = await anthropic.models.list();
    t.deepEqual(
      claude.data.map((m) => m.id),
      ["claude-sonnet-4-5"],
    );
  },
);
