import test from "ava";
import { policyDefinition } from "../services/policy/run.js";
import { startRuntime } from "../services/kit/runtime.js";
import { redisUrl, testServiceSecret } from "./support/env.js";
import { startIdentity } from "./support/runtime.js";

// Split mode: a service is ready only while the services it depends on
// answer; liveness (/healthz) never asks anyone else.
test("a split policy process is ready while identity answers, unready when it stops, and alive throughout", async (t) => {
  const secret = testServiceSecret();
  const identity = await startIdentity({ AIRLOCK_SERVICE_SECRET: secret });
  let identityUp = true;
  t.teardown(async () => {
    if (identityUp) await identity.close();
  });
  const policy = await startRuntime({
    services: [policyDefinition],
    split: true,
    env: {
      DATABASE_URL: identity.databaseUrl,
      REDIS_URL: redisUrl,
      AIRLOCK_RPC_ADDR: "127.0.0.1:0",
      AIRLOCK_DATA_DIR: identity.dataDir,
      AIRLOCK_LOG_LEVEL: "error",
      AIRLOCK_SERVICE_SECRET: secret,
      AIRLOCK_IDENTITY_URL: identity.runtime.server.url,
    },
  });
  t.teardown(() => policy.stop());
  const base = policy.server.url;
  const ready = await fetch(`${base}/readyz`);
  t.is(ready.status, 200);
  t.deepEqual(await ready.json(), {
    ready: true,
    checks: { postgres: "ok", redis: "ok", identity: "ok" },
  });

  await identity.runtime.stop();
  const unready = await fetch(`${base}/readyz`);
  t.is(unready.status, 503);
  const body = (await unready.json()) as { ready: boolean; checks: Record<string, string> };
  t.false(body.ready);
  t.regex(body.checks.identity!, /^failing: /);
  t.is(body.checks.postgres, "ok");
  t.is((await fetch(`${base}/healthz`)).status, 200, "liveness does not depend on identity");
  await identity.close();
  identityUp = false;
});
