/**
 * Policy Check latency with 10,000 rules loaded:
 * - in process: a decision by the org's Casbin enforcer (uncached), and a
 *   repeat answered by the callers' DecisionCache (cached);
 * - over loopback: the Check RPC against `airlock serve identity policy` in its
 *   own process, on the real Postgres and Redis.
 * The 10,000 rules sit in the org that is asked, spread over 100 roles; a
 * second line puts them all on the one role asked (Casbin then scans them
 * one by one).
 *
 *   npm run bench:policy
 */
import { cpus } from "node:os";
import { IdentityService } from "../gen/airlock/identity/v1/identity_pb.js";
import { PolicyService } from "../gen/airlock/policy/v1/policy_pb.js";
import { DecisionCache } from "../services/kit/decision-cache.js";
import { ServiceCredentials } from "../services/kit/service-credentials.js";
import { MemoryCache } from "../services/kit/shared-cache.js";
import { OrgPolicy } from "../services/policy/model.js";
import { parseBundle } from "../services/policy/rules.js";
import { starterBundle } from "../services/cli/policy-commands.js";
import { connectTo } from "../test/support/clients.js";
import { createTestDatabase, redisUrl, testServiceSecret } from "../test/support/env.js";
import { latencyRow, spawnAsDeployed, timeEach } from "./bench-support.js";

const ruleCount = 10_000;
const samples = Number(process.env.BENCH_SAMPLES ?? 300);
const bundle = [
  starterBundle(),
  ...Array.from(
    { length: ruleCount },
    (_, i) => `p, role:team-${i % 100}, model:vendor-${i}/*, invoke, allow`,
  ),
].join("\n");
const asked = {
  subject: "role:org-admin",
  object: "model:anthropic/claude-sonnet-4",
  action: "invoke",
};
const rows: string[] = [];

// In process, uncached: every call runs the Casbin enforcer over the org's rules.
const rules = parseBundle(bundle).rules;
const whole = await OrgPolicy.load("org_bench", 1n, rules);
rows.push(
  latencyRow(
    `in process, uncached (Casbin enforce), ${rules.length} rules in the org`,
    await timeEach(samples, () => whole.decide([asked.subject], asked.object, asked.action)),
  ),
);
// The worst case: all 10,000 rules on the one role that is asked.
const oneRole = await OrgPolicy.load(
  "org_bench",
  1n,
  parseBundle(
    Array.from(
      { length: ruleCount },
      (_, i) => `p, role:busy, model:vendor-${i}/*, invoke, allow`,
    ).join("\n"),
  ).rules,
);
rows.push(
  latencyRow(
    `in process, uncached, all ${ruleCount} rules on the subject asked (worst case)`,
    await timeEach(Math.ceil(samples / 10), () =>
      oneRole.decide(["role:busy"], asked.object, asked.action),
    ),
  ),
);

// Over loopback, against a real policy service holding the same rules.
const db = await createTestDatabase();
const secret = testServiceSecret();
const server = await spawnAsDeployed(["serve", "identity", "policy"], {
  DATABASE_URL: db.url,
  REDIS_URL: redisUrl,
  AIRLOCK_SERVICE_SECRET: secret,
});
server.child.stdout?.removeAllListeners("data").resume();
try {
  const boot = await connectTo(IdentityService, server.url).bootstrap({
    orgName: "bench",
    adminEmail: "bench@bench.test",
  });
  await connectTo(PolicyService, server.url, boot.token).applyBundle({
    orgId: boot.org!.id,
    bundle,
  });
  // Asked as the proxy asks: with a service credential.
  const policy = connectTo(
    PolicyService,
    server.url,
    new ServiceCredentials(secret, "proxy").issue("policy"),
  );
  const request = { ...asked, orgId: boot.org!.id };
  for (let i = 0; i < 20; i++) await policy.check(request);
  rows.push(
    latencyRow(
      `over loopback, uncached (Check RPC), ${rules.length} rules in the org`,
      await timeEach(samples, () => policy.check(request)),
    ),
  );

  const cache = new DecisionCache(policy, new MemoryCache());
  await cache.check(request);
  rows.push(
    latencyRow(
      "in process, cached (DecisionCache hit)",
      await timeEach(samples * 100, () => cache.check(request)),
    ),
  );
} finally {
  await server.stop();
  await db.drop();
}

console.log(`Policy Check; ${cpus().length} CPUs (${cpus()[0]?.model.trim()})`);
console.log("");
console.log("| case | calls | p50 ms | p99 ms | mean ms |");
console.log("|---|---|---|---|---|");
for (const r of rows) console.log(r);
