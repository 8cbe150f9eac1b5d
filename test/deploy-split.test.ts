import test from "ava";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { AuditService } from "../gen/airlock/audit/v1/audit_pb.js";
import { IdentityService, PrincipalKind } from "../gen/airlock/identity/v1/identity_pb.js";
import { PolicyService } from "../gen/airlock/policy/v1/policy_pb.js";
import { RetentionService, RunStatus } from "../gen/airlock/retention/v1/retention_pb.js";
import { startFakeUpstream } from "../scripts/fake-upstream.js";
import { starterBundle } from "../services/cli/policy-commands.js";
import { connectTo } from "./support/clients.js";
import {
  composeEnvironment,
  freePort,
  readCompose,
  type LocalPlacement,
} from "./support/deploy.js";
import { createTestDatabase, redisUrl, testServiceSecret } from "./support/env.js";
import { spawnAirlock, type AirlockProcess } from "./support/process.js";
import { auditedRecords, readContentRule } from "./support/records.js";

const calls = 60;
const concurrency = 4;

// Split mode as deploy/compose/compose.yaml runs it: each service in its own
// OS process on its own port, with the environment compose gives its
// container (only hosts, ports and paths moved to this machine), against the
// real Postgres and Redis. The audit process is SIGKILLed under traffic and
// restarted on the same port; the proxy's spool must deliver every record once.
// Then a retention dry run, which the retention process carries out through
// audit (the restarted one) and identity.
test("split mode from compose's environment: SDK calls through five processes, audit SIGKILLed and restarted under traffic, no record lost or doubled, a retention run across them", async (t) => {
  t.timeout(180_000);
  const db = await createTestDatabase();
  const fake = await startFakeUpstream();
  const dataRoot = await mkdtemp(join(tmpdir(), "airlock-deploy-split-"));
  const running = new Map<string, AirlockProcess>();
  t.teardown(async () => {
    await Promise.all([...running.values()].map((p) => p.stop("SIGTERM")));
    await fake.close();
    await db.drop();
    await rm(dataRoot, { recursive: true, force: true });
  });

  // The services compose runs, in its start order (depends_on).
  const compose = await readCompose();
  const names = ["identity", "policy", "audit", "proxy", "retention"];
  t.deepEqual(
    Object.keys(compose.services).filter((s) => s !== "postgres" && s !== "redis"),
    names,
  );
  const placements: Record<string, LocalPlacement> = {};
  for (const name of names)
    placements[name] = {
      rpcPort: await freePort(),
      dataDir: join(dataRoot, name),
      ...(name === "proxy" ? { llmPort: await freePort() } : {}),
    };
  // What an operator's .env would hold.
  const vars = {
    AIRLOCK_SERVICE_SECRET: testServiceSecret(),
    POSTGRES_PASSWORD: "unused-here",
    AIRLOCK_OPENAI_BASE_URL: `${fake.url}/v1`,
  };
  const url = (name: string) => `http://127.0.0.1:${placements[name]!.rpcPort}`;
  const envs = new Map<string, { env: Record<string, string>; args: string[] }>();
  for (const name of names)
    envs.set(
      name,
      await composeEnvironment(name, vars, placements, { databaseUrl: db.url, redisUrl }),
    );
  // Every process finds the others through the AIRLOCK_*_URL variables compose sets.
  t.is(envs.get("proxy")!.env.AIRLOCK_AUDIT_URL, `http://127.0.0.1:${placements.audit!.rpcPort}`);
  t.is(envs.get("proxy")!.env.AIRLOCK_SPOOL_DIR, join(dataRoot, "proxy", "spool"));
  t.is(envs.get("retention")!.env.AIRLOCK_IDENTITY_URL, url("identity"));

  // spawnAirlock waits for the `airlock serving` line, logged at info.
  const start = async (name: string) => {
    const { env, args } = envs.get(name)!;
    const p = await spawnAirlock(args, { ...env, AIRLOCK_LOG_LEVEL: "info" }, { exactEnv: true });
    running.set(name, p);
    return p;
  };
  for (const name of names) await start(name);

  // The first org, its policy (content readable by its admins) and an agent, each RPC at its service.
  const boot = await connectTo(IdentityService, url("identity")).bootstrap({
    orgName: "deploy-split",
    adminEmail: "admin@deploy-split.test",
  });
  await connectTo(PolicyService, url("policy"), boot.token).applyBundle({
    orgId: boot.org!.id,
    bundle: `${starterBundle()}\n${readContentRule}\n`,
  });
  const asAdmin = connectTo(IdentityService, url("identity"), boot.token);
  const agent = (
    await asAdmin.createPrincipal({ kind: PrincipalKind.AGENT, displayName: "split-agent" })
  ).principal!;
  const agentToken = (await asAdmin.createToken({ principalId: agent.id })).token;
  const openai = new OpenAI({
    apiKey: agentToken,
    baseURL: `http://127.0.0.1:${placements.proxy!.llmPort}/openai/v1`,
    maxRetries: 0,
  });
  const reader = { url: url("audit"), token: boot.token };

  // One call, read back from audit.
  const first = await openai.chat.completions.create({
    model: "gpt-4o",
    messages: [{ role: "user", content: "(deploy-split first)" }],
  });
  t.is(first.choices[0]!.message.content, "Hello from the fake upstream.");
  const firstRecords = await waitForRecords(reader, 2);
  t.truthy(
    firstRecords.find(
      (r) =>
        r.kind === "llm.request" &&
        r.principalId === agent.id &&
        JSON.stringify(r.content.body).includes("(deploy-split first)"),
    ),
  );

  // Traffic, with the audit process SIGKILLed a third of the way in and restarted on its
  // port at two thirds: calls go on meanwhile (strict mode needs only the local spool).
  let done = 0;
  let killed: Promise<unknown> | undefined;
  let restarted: Promise<unknown> | undefined;
  const failures: string[] = [];
  const call = async (i: number) => {
    try {
      const answer = await openai.chat.completions.create({
        model: "gpt-4o",
        messages: [{ role: "user", content: `(deploy-split call ${i})` }],
      });
      if (answer.choices[0]?.message.content !== "Hello from the fake upstream.")
        failures.push(`call ${i}: unexpected answer`);
    } catch (err) {
      failures.push(`call ${i}: ${(err as Error).message}`);
    }
    done++;
    if (done === Math.floor(calls / 3) && !killed) {
      const audit = running.get("audit")!;
      killed = audit.stop("SIGKILL");
    }
    if (done === Math.floor((2 * calls) / 3) && !restarted) {
      restarted = killed!.then(() => start("audit"));
    }
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < calls) await call(next++);
    }),
  );
  t.is(await killed, -1, "the audit process died of SIGKILL");
  await restarted;
  t.deepEqual(failures, []);

  // Every call: exactly one request record and exactly one response record, same id.
  const records = await waitForRecords(reader, 2 * (calls + 1));
  t.is(records.length, 2 * (calls + 1), "no record doubled");
  for (let i = 0; i < calls; i++) {
    const marker = `(deploy-split call ${i})`;
    const requests = records.filter(
      (r) => r.kind === "llm.request" && JSON.stringify(r.content.body).includes(marker),
    );
    t.is(requests.length, 1, `${marker}: one request record`);
    const responses = records.filter((r) => r.kind === "llm.response" && r.id === requests[0]?.id);
    t.is(responses.length, 1, `${marker}: one response record`);
  }
  // And the org's chain, written across the restart, verifies.
  const verdict = await connectTo(AuditService, url("audit"), boot.token).verify({});
  t.true(verdict.ok, verdict.problem?.message);

  // The fifth process: a dry run asks audit's Purge and identity's PurgeTokens what is expired.
  const { run } = await connectTo(RetentionService, url("retention"), boot.token).run({
    dryRun: true,
  });
  t.is(run?.status, RunStatus.SUCCEEDED, run?.error);
  t.true(run?.dryRun);
  t.is(run?.requestedBy, boot.admin!.id);
});

/** The org's proxy records once audit holds at least `count` (the shipper delivers them). */
async function waitForRecords(reader: { url: string; token: string }, count: number) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const records = await auditedRecords(reader).catch(() => []);
    if (records.length >= count || Date.now() > deadline) return records;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
