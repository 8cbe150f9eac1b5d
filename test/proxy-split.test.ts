import test from "ava";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { IdentityService } from "../gen/airlock/identity/v1/identity_pb.js";
import { startFakeUpstream } from "../scripts/fake-upstream.js";
import { connectTo } from "./support/clients.js";
import { createTestDatabase, redisUrl, testServiceSecret } from "./support/env.js";
import { spawnAirlock, type AirlockProcess } from "./support/process.js";
import { orgWithAgent } from "./support/org-setup.js";
import { readContentRule, recordsOf } from "./support/records.js";

test("the proxy in its own process: calls identity, policy and audit over the network, and drops a revoked token at once", async (t) => {
  const db = await createTestDatabase();
  const fake = await startFakeUpstream();
  const dataDir = await mkdtemp(join(tmpdir(), "airlock-proxy-split-"));
  const env = {
    DATABASE_URL: db.url,
    REDIS_URL: redisUrl,
    AIRLOCK_SERVICE_SECRET: testServiceSecret(),
  };
  const processes: AirlockProcess[] = [];
  t.teardown(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await fake.close();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  });
  const core = await spawnAirlock(["serve", "identity", "policy", "audit"], env);
  processes.push(core);
  const proxy = await spawnAirlock(["serve", "proxy"], {
    ...env,
    AIRLOCK_IDENTITY_URL: core.url,
    AIRLOCK_POLICY_URL: core.url,
    AIRLOCK_AUDIT_URL: core.url,
    AIRLOCK_OPENAI_BASE_URL: `${fake.url}/v1`,
    AIRLOCK_DATA_DIR: dataDir,
  });
  processes.push(proxy);
  const llm = proxy.endpoints.llm!;

  const org = await orgWithAgent(core.url, { org: "apart", extraRules: readContentRule });
  const openai = new OpenAI({ apiKey: org.agentToken, baseURL: `${llm}/openai/v1`, maxRetries: 0 });

  const answer = await openai.chat.completions.create({
    model: "gpt-4o",
    messages: [{ role: "user", content: "(split)" }],
  });
  t.is(answer.choices[0]!.message.content, "Hello from the fake upstream.");
  const { request } = await recordsOf({ url: core.url, token: org.adminToken }, (r) =>
    JSON.stringify(r.content.body).includes("(split)"),
  );
  t.is(request.principalId, org.agentId);
  t.true(
    (await t.throwsAsync(
      openai.chat.completions.create({
        model: "o3-pro",
        messages: [{ role: "user", content: "x" }],
      }),
    )) instanceof OpenAI.PermissionDeniedError,
  );

  // The proxy keeps the token's answer in process; identity's revocation message must drop it.
  await connectTo(IdentityService, core.url, org.adminToken).revokeToken({
    tokenId: org.agentTokenId,
  });
  let refused = false;
  const revokedAt = performance.now();
  while (!refused && performance.now() - revokedAt < 1000) {
    refused = await openai.chat.completions
      .create({ model: "gpt-4o", messages: [{ role: "user", content: "again" }] })
      .then(
        () => false,
        (err: unknown) => err instanceof OpenAI.AuthenticationError,
      );
  }
  t.true(refused, "refused within a second of the revocation");
  t.log(`refused ${(performance.now() - revokedAt).toFixed(1)} ms after RevokeToken returned`);
});
