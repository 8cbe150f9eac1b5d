import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { BreakerState, ProxyService } from "../gen/airlock/proxy/v1/proxy_pb.js";
import { auditDefinition } from "../services/audit/run.js";
import { identityDefinition } from "../services/identity/run.js";
import { policyDefinition } from "../services/policy/run.js";
import { proxyDefinition } from "../services/proxy/run.js";
import { startFakeUpstream, type FakeUpstream } from "../scripts/fake-upstream.js";
import { readContentRule, recordsOf, type AuditReader } from "./support/records.js";
import { orgWithAgent } from "./support/org-setup.js";
import { startServices, type Harness } from "./support/runtime.js";

const run = promisify(execFile);
let fake: FakeUpstream;
let h: Harness;
let admin: string;
let reader: AuditReader;
let agentId: string;
let agentToken: string;
let llm: string;

test.before(async () => {
  fake = await startFakeUpstream();
  h = await startServices(
    [identityDefinition, policyDefinition, auditDefinition, proxyDefinition],
    {
      AIRLOCK_OPENAI_BASE_URL: `${fake.url}/v1`,
      AIRLOCK_ANTHROPIC_BASE_URL: fake.url,
      AIRLOCK_PROXY_MAX_BODY_BYTES: String(64 * 1024),
    },
  );
  ({
    adminToken: admin,
    agentId,
    agentToken,
  } = await orgWithAgent(h.runtime.server.url, {
    org: "governed",
    extraRules: `p, role:agent, tool:delete_repo, use, deny\n${readContentRule}`,
  }));
  reader = { url: h.runtime.server.url, token: admin };
  llm = h.runtime.endpoints.llm!;
});
test.after.always(async () => {
  await h?.close();
  await fake?.close();
});

const openai = (token: string) =>
  new OpenAI({ apiKey: token, baseURL: `${llm}/openai/v1`, maxRetries: 0 });
const anthropic = (token: string) =>
  new Anthropic({ apiKey: token, baseURL: `${llm}/anthropic`, maxRetries: 0 });

test.serial(
  "a model policy does not allow gets 403 in the provider's error shape, naming the missing permission; nothing goes upstream",
  async (t) => {
    const before = fake.requests.length;
    const err = await t.throwsAsync(
      openai(agentToken).chat.completions.create({
        model: "o3-pro",
        messages: [{ role: "user", content: "(denied model)" }],
      }),
    );
    t.true(err instanceof OpenAI.PermissionDeniedError);
    t.regex(err!.message, new RegExp(`does not let ${agentId} invoke model:openai/o3-pro`));
    const anth = await t.throwsAsync(
      anthropic(agentToken).messages.create({
        model: "claude-opus-4",
        max_tokens: 10,
        messages: [{ role: "user", content: "(denied anthropic)" }],
      }),
    );
    t.true(anth instanceof Anthropic.PermissionDeniedError);
    t.is(fake.requests.length, before);
    const { response } = await recordsOf(reader, (r) =>
      JSON.stringify(r.content.body).includes("(denied model)"),
    );
    t.is(response.status, "denied");
    t.is(response.httpStatus, 403);
  },
);

test.serial(
  "a tool policy does not allow is removed before the request leaves, and the removal is recorded",
  async (t) => {
    const tool = (name: string) => ({
      type: "function" as const,
      function: { name, parameters: { type: "object", properties: {} } },
    });
    await openai(agentToken).chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "(tool stripping)" }],
      tools: [tool("get_weather"), tool("delete_repo")],
      tool_choice: { type: "function", function: { name: "delete_repo" } },
    });
    const sent = fake.requests.at(-1)!.body as {
      tools: { function: { name: string } }[];
      tool_choice?: unknown;
    };
    t.deepEqual(
      sent.tools.map((x) => x.function.name),
      ["get_weather"],
    );
    t.is(sent.tool_choice, undefined, "a choice of the removed tool goes too");
    const { request } = await recordsOf(reader, (r) =>
      JSON.stringify(r.content.body).includes("(tool stripping)"),
    );
    t.deepEqual(request.removedTools, ["delete_repo"]);
    t.deepEqual(
      request.toolNames,
      ["get_weather"],
      "the record names the tools that went upstream",
    );
  },
);

test.serial("a revoked token is refused on the next call", async (t) => {
  const created = await h.client(admin).createToken({ principalId: agentId });
  await openai(created.token).chat.completions.create({
    model: "gpt-4o",
    messages: [{ role: "user", content: "hi" }],
  });
  await h.client(admin).revokeToken({ tokenId: created.tokenInfo!.id });
  const err = await t.throwsAsync(
    openai(created.token).chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "hi again" }],
    }),
  );
  t.true(err instanceof OpenAI.AuthenticationError);
});

test.serial("bad credentials get 401 in the provider's shape", async (t) => {
  t.true(
    (await t.throwsAsync(openai("alk_nope").models.list())) instanceof OpenAI.AuthenticationError,
  );
  t.true(
    (await t.throwsAsync(anthropic("").models.list())) instanceof Anthropic.AuthenticationError,
  );
  const llmOnlyMissing = (
    await h.client(admin).createToken({ principalId: agentId, scopes: ["audit"] })
  ).token;
  t.true(
    (await t.throwsAsync(openai(llmOnlyMissing).models.list())) instanceof
      OpenAI.PermissionDeniedError,
    "a token without the llm scope",
  );
});

async function raw(path: string, init: RequestInit & { headers?: Record<string, string> }) {
  const res = await fetch(`${llm}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${agentToken}`, ...init.headers },
  });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, { type?: string; message?: string }> & {
      type?: string;
    },
  };
}

test.serial(
  "bad input is refused in the provider's shape and never reaches the upstream",
  async (t) => {
    const before = fake.requests.length;
    const json = { "content-type": "application/json" };
    const unknown = await raw("/openai/v1/embeddings", {
      method: "POST",
      headers: json,
      body: "{}",
    });
    t.is(unknown.status, 404);
    t.regex(unknown.body.error!.message!, /unknown path \/openai\/v1\/embeddings/);
    const unknownAnthropic = await raw("/anthropic/v1/complete", {
      method: "POST",
      headers: json,
      body: "{}",
    });
    t.is(unknownAnthropic.status, 404);
    t.is(unknownAnthropic.body.type, "error");
    t.is(unknownAnthropic.body.error!.type, "not_found_error");
    t.is(
      (
        await raw("/openai/v1/chat/completions", {
          method: "POST",
          headers: json,
          body: "{not json",
        })
      ).status,
      400,
    );
    t.is(
      (await raw("/openai/v1/chat/completions", { method: "POST", headers: json, body: "[1,2]" }))
        .status,
      400,
    );
    const noModel = await raw("/anthropic/v1/messages", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ messages: [] }),
    });
    t.is(noModel.status, 400);
    t.regex(noModel.body.error!.message!, /model: required/);
    t.is(
      (
        await raw("/openai/v1/chat/completions", {
          method: "POST",
          headers: { "content-type": "text/plain" },
          body: "{}",
        })
      ).status,
      415,
    );
    const huge = JSON.stringify({
      model: "gpt-4o",
      messages: [{ role: "user", content: "x".repeat(100 * 1024) }],
    });
    t.is(
      (await raw("/openai/v1/chat/completions", { method: "POST", headers: json, body: huge }))
        .status,
      413,
    );
    t.is((await raw("/openai/v1/chat/completions", { method: "GET", headers: json })).status, 405);
    t.is(
      (
        await raw("/openai/v1/chat/completions", {
          method: "POST",
          headers: json,
          body: JSON.stringify({ model: "bad model name!" }),
        })
      ).status,
      400,
    );
    t.is(fake.requests.length, before, "none of them reached the upstream");
    t.is((await fetch(`${h.runtime.server.url}/healthz`)).status, 200, "and the process is fine");
  },
);

test.serial(
  "a client that goes away mid-stream aborts the upstream call and is recorded as aborted",
  async (t) => {
    fake.setLatency(0, 200);
    t.teardown(() => fake.setLatency(0, 0));
    const controller = new AbortController();
    const stream = await openai(agentToken).chat.completions.create(
      { model: "gpt-4o", messages: [{ role: "user", content: "(abort me)" }], stream: true },
      { signal: controller.signal },
    );
    for await (const chunk of stream) {
      t.truthy(chunk, "the first chunk arrived before the client left");
      controller.abort();
      break;
    }
    const { response } = await recordsOf(reader, (r) =>
      JSON.stringify(r.content.body).includes("(abort me)"),
    );
    t.is(response.status, "aborted");
  },
);

/** A conversation's user turns: `first`, then `more` turns that follow it. */
const turns = (first: string, more: number) => [
  { role: "user" as const, content: first },
  ...Array.from({ length: more }, (_, i) => ({
    role: "user" as const,
    content: `(turn ${i}) ${first}`,
  })),
];

/** The session id recorded for the call whose `field` held `items` items, opening with `first`. */
const sessionOf = async (field: "messages" | "input", first: string, items: number) =>
  (
    await recordsOf(reader, (r) => {
      const list = (r.content.body as Record<string, unknown>)[field];
      return Array.isArray(list) && list.length === items && JSON.stringify(list).includes(first);
    })
  ).request.sessionId;

test.serial(
  "a conversation's calls share a session id: the client's x-airlock-session, else one derived from its start",
  async (t) => {
    const ask = (first: string, more: number, session?: string) =>
      openai(agentToken).chat.completions.create(
        {
          model: "gpt-4o",
          messages: [{ role: "system", content: "(session test)" }, ...turns(first, more)],
        },
        session ? { headers: { "x-airlock-session": session } } : undefined,
      );
    await ask("(conversation A)", 0);
    await ask("(conversation A)", 2);
    await ask("(conversation B)", 0);
    await ask("(conversation C)", 0, "ses-from-client");
    const a0 = await sessionOf("messages", "(conversation A)", 2);
    t.regex(a0, /^s_[0-9a-f]{24}$/);
    t.is(
      await sessionOf("messages", "(conversation A)", 4),
      a0,
      "a later turn of the same conversation",
    );
    t.not(await sessionOf("messages", "(conversation B)", 2), a0, "another conversation");
    t.is(await sessionOf("messages", "(conversation C)", 2), "ses-from-client");
  },
);

test.serial(
  "a Responses conversation's session starts at its first turn, after the developer message",
  async (t) => {
    const ask = (first: string, more: number) =>
      openai(agentToken).responses.create({
        model: "gpt-4o",
        instructions: "(session test, responses)",
        input: [
          { role: "developer", content: "(the same for every conversation)" },
          ...turns(first, more),
        ],
      });
    await ask("(responses D)", 0);
    await ask("(responses D)", 1);
    await ask("(responses E)", 0);
    const d0 = await sessionOf("input", "(responses D)", 2);
    t.is(await sessionOf("input", "(responses D)", 3), d0, "a later turn of the same conversation");
    t.not(await sessionOf("input", "(responses E)", 2), d0, "another conversation");
  },
);

test.serial("a whole answer keeps the upstream's length; a stream stays chunked", async (t) => {
  const call = (stream: boolean) =>
    fetch(`${llm}/openai/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${agentToken}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-4o",
        stream,
        messages: [{ role: "user", content: "hi" }],
      }),
    });
  const whole = await call(false);
  const bytes = Buffer.from(await whole.arrayBuffer());
  t.is(whole.status, 200);
  t.is(whole.headers.get("content-length"), String(bytes.length));
  t.is(whole.headers.get("transfer-encoding"), null);
  t.truthy((JSON.parse(bytes.toString("utf8")) as { choices: unknown[] }).choices.length);
  const streamed = await call(true);
  t.is(streamed.headers.get("transfer-encoding"), "chunked");
  t.is(streamed.headers.get("content-length"), null);
  t.true((await streamed.text()).includes("data: [DONE]"));
});

test.serial("the LLM port speaks HTTP/2 as well as HTTP/1.1", async (t) => {
  const { stdout } = await run("curl", [
    "-sS",
    "--http2-prior-knowledge",
    "-H",
    `Authorization: Bearer ${agentToken}`,
    "-w",
    "\\n%{http_version} %{http_code}",
    `${llm}/openai/v1/models`,
  ]);
  const [body, status] = stdout.split("\n");
  t.is(status, "2 200");
  t.deepEqual((JSON.parse(body!) as { data: { id: string }[] }).data.map((m) => m.id).sort(), [
    "gpt-4o",
    "gpt-4o-mini",
  ]);
});

test.serial(
  "ListRoutes shows a caller where its models go; ListBreakers needs read on keys",
  async (t) => {
    const routes = await h.connect(ProxyService, agentToken).listRoutes({});
    t.deepEqual(
      routes.routes.map((r) => `${r.api} ${r.model} → ${r.targets.join(", ")}`),
      ["openai * → openai/*", "anthropic * → anthropic/*"],
    );
    await t.throwsAsync(h.connect(ProxyService, agentToken).listBreakers({}), {
      message: /needs read on keys/,
    });
    const breakers = await h.connect(ProxyService, admin).listBreakers({});
    t.deepEqual(
      breakers.breakers.map((b) => [b.provider, b.state]),
      [
        ["openai", BreakerState.CLOSED],
        ["anthropic", BreakerState.CLOSED],
      ],
    );
  },
);

test.serial(
  "a provider refusing Airlock's own key is a 502 for the caller, not a 401 for its token",
  async (t) => {
    fake.failNext({ kind: "status", status: 401 }, 1);
    const err = await t.throwsAsync(
      openai(agentToken).chat.completions.create({
        model: "gpt-4o",
        messages: [{ role: "user", content: "(bad upstream key)" }],
      }),
    );
    t.true(err instanceof OpenAI.APIError && err.status === 502, String(err));
    t.regex(err!.message, /refused Airlock's API key/);
    const { response } = await recordsOf(reader, (r) =>
      JSON.stringify(r.content.body).includes("(bad upstream key)"),
    );
    t.is(response.status, "error");
  },
);
