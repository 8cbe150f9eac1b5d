import test from "ava";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

let primary: FakeUpstream;
let backup: FakeUpstream;
let h: Harness;
let admin: string;
let reader: AuditReader;
let openai: OpenAI;
let anthropic: Anthropic;
let dir: string;

test.before(async () => {
  primary = await startFakeUpstream();
  backup = await startFakeUpstream();
  dir = await mkdtemp(join(tmpdir(), "airlock-routes-"));
  const routes = join(dir, "routes.yaml");
  await writeFile(
    routes,
    [
      "providers:",
      "  - { name: primary, api: openai, base_url: " +
        `${primary.url}/v1` +
        ", api_key_env: PRIMARY_KEY }",
      "  - { name: backup, api: openai, base_url: " +
        `${backup.url}/v1` +
        ", api_key_file: " +
        join(dir, "backup.key") +
        " }",
      "models:",
      "  - name: team-gpt",
      "    api: openai",
      "    targets:",
      "      - { provider: primary, model: gpt-4o }",
      "      - { provider: backup, model: gpt-4o-mini }",
    ].join("\n"),
  );
  await writeFile(join(dir, "backup.key"), "sk-backup-key\n");
  h = await startServices(
    [identityDefinition, policyDefinition, auditDefinition, proxyDefinition],
    {
      AIRLOCK_ROUTES_FILE: routes,
      PRIMARY_KEY: "sk-primary-key",
      AIRLOCK_ANTHROPIC_BASE_URL: primary.url,
      AIRLOCK_UPSTREAM_RETRIES: "1",
      AIRLOCK_BREAKER_RESET: "60s",
    },
  );
  const org = await orgWithAgent(h.runtime.server.url, {
    org: "faulty",
    extraRules: `p, role:developer, model:primary/*, invoke, allow\n${readContentRule}`,
  });
  admin = org.adminToken;
  reader = { url: h.runtime.server.url, token: admin };
  const token = org.agentToken;
  openai = new OpenAI({
    apiKey: token,
    baseURL: `${h.runtime.endpoints.llm}/openai/v1`,
    maxRetries: 0,
  });
  anthropic = new Anthropic({
    apiKey: token,
    baseURL: `${h.runtime.endpoints.llm}/anthropic`,
    maxRetries: 0,
  });
});
test.after.always(async () => {
  await h?.close();
  await primary?.close();
  await backup?.close();
  await rm(dir, { recursive: true, force: true });
});

const ask = (tag: string) =>
  openai.chat.completions.create({ model: "team-gpt", messages: [{ role: "user", content: tag }] });

test.serial("429 with Retry-After: the retry waits as asked, then succeeds", async (t) => {
  primary.failNext({ kind: "status", status: 429, retryAfterSeconds: 1 }, 1);
  const before = primary.requests.length;
  const started = performance.now();
  const answer = await ask("(retry after)");
  const waited = performance.now() - started;
  t.is(answer.model, "gpt-4o", "served by the primary on its retry");
  t.is(primary.requests.length - before, 2);
  t.true(waited >= 950, `waited ${waited.toFixed(0)} ms`);
  const { response } = await recordsOf(reader, (r) =>
    JSON.stringify(r.content.body).includes("(retry after)"),
  );
  t.is(response.attempts, 2);
  t.is(response.status, "ok");
});

test.serial(
  "while the primary answers 500, the fallback serves; the primary's breaker opens and it is no longer called",
  async (t) => {
    primary.failNext({ kind: "status", status: 500 }, 1000);
    t.teardown(() => primary.clearFaults());
    for (let i = 0; i < 4; i++) {
      const answer = await ask(`(fallback ${i})`);
      t.is(answer.model, "gpt-4o-mini", "answered by the backup");
    }
    t.is(backup.requests.at(-1)!.headers.authorization, "Bearer sk-backup-key");
    const breakers = await h.connect(ProxyService, admin).listBreakers({});
    const state = breakers.breakers.find((b) => b.provider === "primary")!;
    t.is(state.state, BreakerState.OPEN);
    t.true(state.failures > 0n, `failures counted: ${state.failures}`);
    const calls = primary.requests.length;
    await ask("(breaker open)");
    t.is(primary.requests.length, calls, "an open breaker sends nothing to the primary");
    const metrics = await (await fetch(`${h.runtime.server.url}/metrics`)).text();
    t.regex(metrics, /airlock_proxy_breaker_state\{provider="primary"\} 2/);
    t.regex(metrics, /airlock_proxy_breaker_state\{provider="backup"\} 0/);
  },
);

test.serial(
  "a failure after the first bytes ends the stream with the provider's error event and is recorded as an error",
  async (t) => {
    primary.failNext({ kind: "midstream" }, 1);
    const stream = anthropic.messages.stream({
      model: "claude-sonnet-5",
      max_tokens: 10,
      messages: [{ role: "user", content: "(midstream)" }],
    });
    const err = await t.throwsAsync(stream.finalMessage());
    t.regex(String(err?.message), /upstream stream failed|api_error/);
    const { response } = await recordsOf(reader, (r) =>
      JSON.stringify(r.content.body).includes("(midstream)"),
    );
    t.is(response.status, "error");
    t.regex(response.error, /the upstream stream failed/);
    t.true(response.ttfbMs >= 0, "bytes had reached the client");
  },
);

test.serial(
  "the first SSE event reaches the client before the upstream has finished the stream",
  async (t) => {
    primary.setLatency(0, 150);
    t.teardown(() => primary.setLatency(0, 0));
    const stream = anthropic.messages.stream({
      model: "claude-sonnet-5",
      max_tokens: 10,
      messages: [{ role: "user", content: "(ttfb)" }],
    });
    const started = performance.now();
    let first = -1;
    for await (const event of stream) if (first < 0 && event) first = performance.now() - started;
    const total = performance.now() - started;
    t.true(first >= 0);
    // The fake waits 150 ms between events and sends about ten of them.
    t.true(
      total - first > 600,
      `first event at ${first.toFixed(0)} ms, end at ${total.toFixed(0)} ms`,
    );
  },
);
