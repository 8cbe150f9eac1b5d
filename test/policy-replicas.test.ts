import test from "ava";
import { IdentityService } from "../gen/airlock/identity/v1/identity_pb.js";
import { PolicyService } from "../gen/airlock/policy/v1/policy_pb.js";
import { starterBundle } from "../services/cli/policy-commands.js";
import { connectTo } from "./support/clients.js";
import { createTestDatabase, redisUrl, testServiceSecret } from "./support/env.js";
import { runCli, spawnAirlock, type AirlockProcess } from "./support/process.js";

test("a rule removed through one policy replica stops allowing on the other within one second", async (t) => {
  const db = await createTestDatabase();
  const env = {
    DATABASE_URL: db.url,
    REDIS_URL: redisUrl,
    AIRLOCK_SERVICE_SECRET: testServiceSecret(),
  };
  const processes: AirlockProcess[] = [];
  t.teardown(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await db.drop();
  });
  // Replica A also hosts identity; replica B hosts policy alone and authenticates through A.
  const a = await spawnAirlock(["serve", "identity", "policy"], env);
  processes.push(a);
  const b = await spawnAirlock(["serve", "policy"], { ...env, AIRLOCK_IDENTITY_URL: a.url });
  processes.push(b);

  const boot = await connectTo(IdentityService, a.url).bootstrap({
    orgName: "replicated",
    adminEmail: "admin@replicated.test",
  });
  const orgId = boot.org!.id;
  await connectTo(PolicyService, a.url, boot.token).applyBundle({ orgId, bundle: starterBundle() });
  const rule = { text: "p, role:developer, model:mistral/*, invoke, allow" };
  await connectTo(PolicyService, a.url, boot.token).addRules({ rules: [rule] });
  const onB = () =>
    connectTo(PolicyService, b.url, boot.token).check({
      subject: "role:developer",
      orgId,
      object: "model:mistral/large",
      action: "invoke",
    });
  t.true((await onB()).allowed, "B sees the rule added through A");

  await connectTo(PolicyService, a.url, boot.token).removeRules({ rules: [rule] });
  const removedAt = performance.now();
  let allowed = true;
  while (allowed && performance.now() - removedAt < 1000) allowed = (await onB()).allowed;
  const ms = performance.now() - removedAt;
  t.false(allowed, `B still allowed ${ms.toFixed(0)} ms after the removal`);
  t.log(`B denied ${ms.toFixed(1)} ms after RemoveRules returned on A`);

  // The CLI finds a service that runs apart at AIRLOCK_<SERVICE>_URL, as the services do.
  const listed = await runCli(["policy", "list", "--json"], {
    AIRLOCK_URL: "http://127.0.0.1:9",
    AIRLOCK_POLICY_URL: b.url,
    AIRLOCK_TOKEN: boot.token,
  });
  t.is(listed.code, 0, listed.stderr);
  t.true((JSON.parse(listed.stdout) as { rules: unknown[] }).rules.length > 0);
});
