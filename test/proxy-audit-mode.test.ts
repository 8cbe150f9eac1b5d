import test from "ava";
import OpenAI from "openai";
import { identityDefinition } from "../services/identity/run.js";
import { policyDefinition } from "../services/policy/run.js";
import { proxyDefinition } from "../services/proxy/run.js";
import { startFakeUpstream, type FakeUpstream } from "../scripts/fake-upstream.js";
import { orgWithAgent } from "./support/org-setup.js";
import { startServices, type Harness } from "./support/runtime.js";

// A proxy whose spool is full: audit is not reachable (none is configured
// here), so nothing leaves the spool, and it holds at most 4 KiB.

let fake: FakeUpstream;
test.before(async () => {
  fake = await startFakeUpstream();
});
test.after.always(() => fake?.close());

async function fullProxy(mode: "strict" | "best-effort") {
  const h = await startServices([identityDefinition, policyDefinition, proxyDefinition], {
    AIRLOCK_OPENAI_BASE_URL: `${fake.url}/v1`,
    AIRLOCK_SPOOL_MAX_BYTES: "4096",
    AIRLOCK_AUDIT_MODE: mode,
  });
  const org = await orgWithAgent(h.runtime.server.url, { org: `full-${mode}` });
  const openai = new OpenAI({
    apiKey: org.agentToken,
    baseURL: `${h.runtime.endpoints.llm}/openai/v1`,
    maxRetries: 0,
  });
  const ask = (text: string) =>
    openai.chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: text }],
    });
  return { h, ask };
}

const dropped = async (h: Harness) =>
  (await (await fetch(`${h.runtime.server.url}/metrics`)).text())
    .split("\n")
    .filter((l) => l.startsWith("airlock_audit_records_dropped_total"))
    .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);

test("strict: once the spool is full, calls are refused with 503 in the provider's shape and never go upstream", async (t) => {
  const { h, ask } = await fullProxy("strict");
  t.teardown(() => h.close());
  let answered = 0;
  let refused: unknown;
  for (let i = 0; i < 20 && !refused; i++) {
    const marker = `(strict ${i})`;
    await ask(marker).then(
      () => answered++,
      (err: unknown) => {
        refused = err;
        t.false(
          fake.requests.some((r) => JSON.stringify(r.body).includes(marker)),
          "the refused call did not go upstream",
        );
      },
    );
  }
  t.true(answered > 0, "calls went through while there was room");
  t.true(refused instanceof OpenAI.APIError && refused.status === 503, String(refused));
  t.regex((refused as Error).message, /Airlock cannot record this call right now/);
  t.is(await dropped(h), 0, "no call went ahead without its request record");
});

test("best-effort: with the spool full, calls go on; lost records are counted and logged without their prompt", async (t) => {
  const { h, ask } = await fullProxy("best-effort");
  t.teardown(() => h.close());
  for (let i = 0; i < 12; i++) {
    const answer = await ask(`(best effort ${i}) the secret plan`);
    t.is(answer.choices[0]!.message.content, "Hello from the fake upstream.");
  }
  t.true((await dropped(h)) > 0);
  t.regex(h.logs.text, /audit record lost/);
  t.notRegex(h.logs.text, /the secret plan/);
});
