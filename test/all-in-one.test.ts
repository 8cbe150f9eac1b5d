import test from "ava";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditService } from "../gen/airlock/audit/v1/audit_pb.js";
import { llmResponse } from "./support/audit-records.js";
import { connectAsService } from "./support/clients.js";
import { testServiceSecret } from "./support/env.js";
import { orgWithAgent } from "./support/org-setup.js";
import { runCli, spawnAirlock } from "./support/process.js";

test("airlock serve on the embedded default: bootstrap, tokens and agents from the CLI; data survives a restart", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "airlock-aio-"));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const env = { AIRLOCK_DATA_DIR: dataDir };
  let server = await spawnAirlock(["serve"], env);
  t.teardown(() => server.stop("SIGKILL"));
  t.true(server.output.some((l) => l.includes("using embedded Postgres")));
  const cli = (...args: string[]) => runCli([...args, "--url", server.url]);

  const boot = await cli("bootstrap", "--org", "solo", "--admin", "me@solo.test");
  t.is(boot.code, 0, boot.stderr);
  const token = boot.stdout.trim();
  t.regex(token, /^alk_[0-9A-Za-z]{54}$/, "stdout holds only the token");
  t.regex(boot.stderr, /shown once/);

  const who = await cli("whoami", "--token", token);
  t.is(who.code, 0, who.stderr);
  t.regex(who.stdout, /org-admin/);
  t.regex(boot.stderr, /applied the starter policy: \d+ rules/);
  const me = JSON.parse((await cli("whoami", "--json", "--token", token)).stdout) as {
    id: string;
    org: { id: string };
  };
  const allowed = await cli(
    "policy",
    "check",
    me.id,
    "model:openai/gpt-4o",
    "invoke",
    "--org",
    me.org.id,
    "--token",
    token,
  );
  t.is(allowed.code, 0, allowed.stderr);
  t.is(allowed.stdout.trim(), 'allow: allowed by rule "p, role:org-admin, model:*, *, allow"');
  const denied = await cli(
    "policy",
    "check",
    me.id,
    "audit:content",
    "read",
    "--org",
    me.org.id,
    "--token",
    token,
  );
  t.is(denied.code, 3, "a denial exits 3");
  t.regex(denied.stdout, /^deny: no rule allows usr_\w+ to read audit:content/);

  const agent = await cli(
    "agent",
    "create",
    "helper",
    "--repo",
    "github.com/solo/*",
    "--json",
    "--token",
    token,
  );
  t.is(agent.code, 0, agent.stderr);
  const agentId = (JSON.parse(agent.stdout) as { id: string }).id;
  const agentToken = await cli(
    "token",
    "create",
    "--principal",
    agentId,
    "--ttl",
    "1d",
    "--token",
    token,
  );
  t.is(agentToken.code, 0, agentToken.stderr);
  const list = await cli("token", "list", "--principal", agentId, "--json", "--token", token);
  const listed = JSON.parse(list.stdout) as { tokens: { id: string; scopes: string[] }[] };
  t.is(listed.tokens.length, 1);
  t.deepEqual(listed.tokens[0]!.scopes, ["llm"]);
  t.false(list.stdout.includes(agentToken.stdout.trim()), "no secret in the listing");

  const revoke = await cli("token", "revoke", listed.tokens[0]!.id, "--token", token);
  t.is(revoke.code, 0, revoke.stderr);
  const refused = await cli("whoami", "--token", agentToken.stdout.trim());
  t.is(refused.code, 1);
  t.is(refused.stderr.trim(), "airlock: unauthenticated: invalid or missing credential");

  t.is(await server.stop("SIGTERM"), 0, "SIGTERM drains and exits 0");
  const logged = server.output.join("\n");
  for (const secret of [token, agentToken.stdout.trim()])
    t.false(logged.includes(secret.slice(20)), "no token in the server's log");
  server = await spawnAirlock(["serve"], env);
  const again = await runCli(["whoami", "--url", server.url, "--token", token]);
  t.is(again.code, 0, "the embedded database kept the admin and the token");
  const second = await runCli([
    "bootstrap",
    "--url",
    server.url,
    "--org",
    "x1",
    "--admin",
    "a@b.test",
  ]);
  t.is(second.code, 1);
  t.regex(second.stderr, /^airlock: failed_precondition: already bootstrapped/);
});

test("retention on the embedded default: the CLI's dry run and run purge expired content, and the chain verifies", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "airlock-aio-retention-"));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const secret = testServiceSecret();
  const server = await spawnAirlock(["serve"], {
    AIRLOCK_DATA_DIR: dataDir,
    AIRLOCK_SERVICE_SECRET: secret,
  });
  t.teardown(() => server.stop());
  const org = await orgWithAgent(server.url, { org: "solo-retention" });
  const day = 86_400_000;
  await connectAsService(AuditService, server.url, secret, "proxy").append({
    records: [
      llmResponse(org.orgId, { timeMs: Date.now() - 40 * day }),
      llmResponse(org.orgId, { timeMs: Date.now() - 40 * day + 1 }),
      llmResponse(org.orgId),
    ],
  });
  const cli = (...args: string[]) =>
    runCli([...args, "--url", server.url, "--token", org.adminToken]);
  const dry = await cli("retention", "run", "--dry-run");
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /content +30d +before \S+: 2 would be purged/);
  const run = await cli("retention", "run");
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /content +30d +before \S+: 2 purged/);
  const verify = await cli("audit", "verify");
  t.is(verify.code, 0, verify.stdout + verify.stderr);
});

test("split mode without its settings stops with one line naming what is missing", async (t) => {
  const res = await runCli(["serve", "identity"], {});
  t.is(res.code, 2);
  t.is(
    res.stderr.trim(),
    "airlock: DATABASE_URL, REDIS_URL, AIRLOCK_SERVICE_SECRET must be set when serving services in separate processes",
  );
});

test("a bad setting stops start-up with one line naming the variable, the value and what is expected", async (t) => {
  const res = await runCli(["serve"], {
    AIRLOCK_SESSION_TTL: "forever",
    AIRLOCK_DATA_DIR: join(tmpdir(), "airlock-bad-setting"),
  });
  t.is(res.code, 2);
  t.regex(
    res.stderr.trim(),
    /^airlock: AIRLOCK_SESSION_TTL="forever": expected a duration like 30s, 15m, 12h or 30d/,
  );
});

test("the CLI explains an unreachable server and a missing token in one line", async (t) => {
  const down = await runCli(["whoami", "--url", "http://127.0.0.1:9", "--token", "alk_x"]);
  t.is(down.code, 1);
  t.regex(
    down.stderr.trim(),
    /^airlock: cannot reach http:\/\/127.0.0.1:9: is airlock serve running\?/,
  );
  const noToken = await runCli(["token", "list"]);
  t.is(noToken.code, 2);
  t.is(noToken.stderr.trim(), "airlock: no credential: pass --token or set AIRLOCK_TOKEN");
  const unknown = await runCli(["serve", "billing"]);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown service billing/);
});
