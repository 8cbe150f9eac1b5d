import test from "ava";
import pg from "pg";
import { Redis } from "ioredis";
import { createClient } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AuditService } from "../gen/airlock/audit/v1/audit_pb.js";
import { IdentityService, PrincipalKind } from "../gen/airlock/identity/v1/identity_pb.js";
import { PolicyService } from "../gen/airlock/policy/v1/policy_pb.js";
import {
  DataClass,
  RetentionService,
  RunStatus,
  type RunReport,
} from "../gen/airlock/retention/v1/retention_pb.js";
import { auditDefinition } from "../services/audit/run.js";
import { starterBundle } from "../services/cli/policy-commands.js";
import { identityDefinition } from "../services/identity/run.js";
import { startRuntime, type Runtime } from "../services/kit/runtime.js";
import { policyDefinition } from "../services/policy/run.js";
import { newId } from "../services/kit/ids.js";
import { retentionDefinition } from "../services/retention/run.js";
import { llmResponse } from "./support/audit-records.js";
import { connectTo } from "./support/clients.js";
import { code } from "./support/codes.js";
import { redisUrl, testServiceSecret } from "./support/env.js";
import { orgWithAgent } from "./support/org-setup.js";
import { insertOrg } from "./support/orgs.js";
import { runCli } from "./support/process.js";
import { startServices, type Harness } from "./support/runtime.js";

const day = 86_400_000;
/** Agents of the records (holds take principal ids of the shape Airlock issues). */
const heldAgent = newId("agt");
const otherAgent = newId("agt");
const secret = testServiceSecret();
let h: Harness;
let db: pg.Client;
let a: Awaited<ReturnType<typeof orgWithAgent>>;
let b: Awaited<ReturnType<typeof insertOrg>>;
let holdId: string;

const retention = (token: string) => connectTo(RetentionService, h.runtime.server.url, token);
const audit = (token: string) => connectTo(AuditService, h.runtime.server.url, token);

/** One org's line of a run report, by class. */
function counts(run: RunReport, orgId: string) {
  const org = run.orgs.find((o) => o.orgId === orgId);
  const of = (c: DataClass) => Number(org?.classes.find((x) => x.dataClass === c)?.purged ?? 0);
  return {
    content: of(DataClass.CONTENT),
    metadata: of(DataClass.METADATA),
    receipts: of(DataClass.RECEIPTS),
    held: (org?.held ?? []).map((x) => [x.holdId, Number(x.records)]),
    tokens: Number(org?.tokensPurged ?? 0),
  };
}

/** Records of an org older than `days` that still have content. */
async function withContent(orgId: string, olderThanDays: number): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM audit.records r JOIN audit.contents c ON c.record_id = r.id AND c.time = r.time
     WHERE r.org_id = $1 AND r.kind = 'llm.response' AND r.time < now() - make_interval(days => $2)`,
    [orgId, olderThanDays],
  );
  return Number(rows[0]!.n);
}

async function recordsOf(orgId: string, olderThanDays: number): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM audit.records
     WHERE org_id = $1 AND kind = 'llm.response' AND time < now() - make_interval(days => $2)`,
    [orgId, olderThanDays],
  );
  return Number(rows[0]!.n);
}

/** What `probe` finds, once it finds it (retention's outbox ships to audit within a second). */
async function eventually<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const found = await probe();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("not found in 10 s");
}

/** The org's receipt of a run. */
const receiptOf = (token: string, runId: string) =>
  eventually(async () => {
    const page = await audit(token).query({ kinds: ["retention.run"] });
    return page.records.find((r) => r.subject === runId);
  });

test.before(async () => {
  h = await startServices(
    [identityDefinition, policyDefinition, auditDefinition, retentionDefinition],
    { AIRLOCK_SERVICE_SECRET: secret, AIRLOCK_RETENTION_TOKEN_GRACE: "0s" },
  );
  db = new pg.Client({ connectionString: h.databaseUrl });
  await db.connect();
  a = await orgWithAgent(h.runtime.server.url, { org: "retention-acme" });
  b = await insertOrg(h.databaseUrl, "retention-globex");
  await connectTo(PolicyService, h.runtime.server.url, b.token).applyBundle({
    orgId: b.orgId,
    bundle: starterBundle(),
  });
  // 90 days of calls: org A two a day (one by a principal under a legal
  // hold later), org B one a day; oldest first, as they would have come.
  const now = Date.now();
  const records = [];
  for (let d = 90; d >= 1; d--) {
    const timeMs = now - d * day - 3_600_000;
    records.push(llmResponse(a.orgId, { timeMs, actor: "agt_worker" }));
    records.push(llmResponse(a.orgId, { timeMs: timeMs + 1, actor: heldAgent }));
    records.push(llmResponse(b.orgId, { timeMs, actor: "agt_b" }));
  }
  await createClient(AuditService, h.runtime.peer("audit")).append({ records });
});

test.after.always(async () => {
  await db?.end();
  await h?.close();
});

test.serial(
  "rules: defaults until an org sets its own; bad durations and short receipts are refused",
  async (t) => {
    const rules = await retention(a.adminToken).listRules({});
    t.deepEqual(
      rules.rules.map((r) => [r.dataClass, r.duration, r.isDefault]),
      [
        [DataClass.CONTENT, "30d", true],
        [DataClass.METADATA, "400d", true],
        [DataClass.RECEIPTS, "forever", true],
      ],
    );
    const asB = retention(b.token);
    const set = async (dataClass: DataClass, duration: string) =>
      asB.setRule({ orgId: b.orgId, dataClass, duration });
    t.like((await set(DataClass.METADATA, "60d")).rule, {
      duration: "60d",
      days: 60,
      isDefault: false,
    });
    t.like((await set(DataClass.RECEIPTS, "400d")).rule, { duration: "400d" });
    const bad = await t.throwsAsync(set(DataClass.RECEIPTS, "30d"));
    t.regex(bad.message, /receipts \(30d\) cannot be kept shorter than metadata \(60d\)/);
    t.is(await code(set(DataClass.CONTENT, "30 days")), Code.InvalidArgument);
    t.is(
      await code(set(DataClass.CONTENT, "90d")),
      Code.InvalidArgument,
      "content outliving metadata",
    );
    t.is(await code(set(DataClass.UNSPECIFIED, "30d")), Code.InvalidArgument);
    t.is(
      await code(asB.setRule({ orgId: a.orgId, dataClass: DataClass.CONTENT, duration: "1d" })),
      Code.PermissionDenied,
      "another org's rules",
    );
    const changes = await eventually(async () => {
      const page = await audit(b.token).query({ kinds: ["retention.rule"] });
      return page.records.length === 2 ? page.records : undefined;
    });
    t.deepEqual(
      changes.map((r) => [r.action, r.attributes?.duration]),
      [
        ["set", "400d"],
        ["set", "60d"],
      ],
      "each accepted change is in the org's audit log, newest first",
    );
  },
);

test.serial(
  "a principal with read on retention reads rules but cannot change them or run",
  async (t) => {
    const admin = connectTo(IdentityService, h.runtime.server.url, a.adminToken);
    const p = await admin.createPrincipal({
      kind: PrincipalKind.SERVICE_ACCOUNT,
      displayName: "auditor",
      roles: ["auditor"],
    });
    const token = (await admin.createToken({ principalId: p.principal!.id })).token;
    t.is(await code(retention(token).listRules({})), "ok");
    t.is(
      await code(retention(token).setRule({ dataClass: DataClass.CONTENT, duration: "7d" })),
      Code.PermissionDenied,
    );
    t.is(await code(retention(token).run({ dryRun: true })), Code.PermissionDenied);
    t.is(await code(retention(a.agentToken).listRules({})), Code.PermissionDenied);
    t.is(
      await code(connectTo(RetentionService, h.runtime.server.url).listRules({})),
      Code.Unauthenticated,
    );
  },
);

test.serial("a legal hold is validated, placed and recorded in the audit log", async (t) => {
  const asA = retention(a.adminToken);
  t.is(await code(asA.placeHold({ caseId: "", reason: "x" })), Code.InvalidArgument);
  t.is(
    await code(asA.placeHold({ caseId: "C-1", reason: "x", principalIds: ["agt_held"] })),
    Code.InvalidArgument,
    "not a principal id Airlock could have issued",
  );
  t.is(
    await code(
      asA.placeHold({
        caseId: "C-1",
        reason: "x",
        since: timestampFromMs(Date.now()),
        until: timestampFromMs(Date.now() - day),
      }),
    ),
    Code.InvalidArgument,
  );
  const placed = await asA.placeHold({
    caseId: "CASE-2026-17",
    reason: "litigation: the held agent's sessions in that period",
    principalIds: [heldAgent],
    since: timestampFromMs(Date.now() - 50 * day),
    until: timestampFromMs(Date.now() - 40 * day),
  });
  holdId = placed.hold!.holdId;
  const me = await connectTo(IdentityService, h.runtime.server.url, a.adminToken).getPrincipal({});
  t.like(placed.hold, {
    caseId: "CASE-2026-17",
    placedBy: me.principal!.id,
    principalIds: [heldAgent],
  });
  const listed = await asA.listHolds({});
  t.deepEqual(
    listed.holds.map((x) => x.holdId),
    [holdId],
  );
  t.deepEqual((await retention(b.token).listHolds({})).holds, [], "org B sees none of A's holds");
  const recorded = await eventually(async () => {
    const page = await audit(a.adminToken).query({ kinds: ["retention.hold"] });
    return page.records[0];
  });
  t.like(recorded, { action: "placed", subject: holdId });
  t.like(recorded.attributes, { case_id: "CASE-2026-17", principal_ids: [heldAgent] });
});

test.serial(
  "a run purges expired content and metadata except what a hold covers; the dry run before it reports the same counts; receipts carry them",
  async (t) => {
    // A revoked token, which the same run cleans from identity.
    const admin = connectTo(IdentityService, h.runtime.server.url, a.adminToken);
    const dead = await admin.createToken({ principalId: a.agentId, ttl: durationFromMs(day) });
    await admin.revokeToken({ tokenId: dead.tokenInfo!.id });

    const before = { a: await withContent(a.orgId, 30), b: await recordsOf(b.orgId, 60) };
    const dry = (await retention(a.adminToken).run({ dryRun: true })).run!;
    t.true(dry.dryRun);
    t.is(dry.status, RunStatus.SUCCEEDED);
    // Org A: 61 days (30..90) of two calls expired; the held agent's 10 in the hold stay.
    t.deepEqual(counts(dry, a.orgId), {
      content: 112,
      metadata: 0,
      receipts: 0,
      held: [[holdId, 10]],
      tokens: 1,
    });
    t.deepEqual(
      dry.orgs.map((o) => o.orgId),
      [a.orgId],
      "a principal sees only its org's part",
    );
    t.is(await withContent(a.orgId, 30), before.a, "a dry run deletes nothing");
    t.is(await recordsOf(b.orgId, 60), before.b);

    const dryB = (await retention(b.token).run({ dryRun: true })).run!;
    t.deepEqual(counts(dryB, b.orgId), {
      content: 30,
      metadata: 31,
      receipts: 0,
      held: [],
      tokens: 0,
    });

    const real = (await retention(a.adminToken).run({})).run!;
    t.is(real.status, RunStatus.SUCCEEDED);
    t.deepEqual(
      counts(real, a.orgId),
      counts(dry, a.orgId),
      "the real run deletes what the dry run said",
    );
    const seenByB = (await retention(b.token).getRun({ runId: real.runId })).run!;
    t.deepEqual(counts(seenByB, b.orgId), counts(dryB, b.orgId));

    t.is(await withContent(a.orgId, 30), 10, "only the held records keep their content");
    t.is(await recordsOf(a.orgId, 30), 122, "metadata is kept");
    t.is(await recordsOf(b.orgId, 60), 0, "org B's metadata past 60 days is gone");
    t.is(await withContent(b.orgId, 30), 0);
    t.is(await recordsOf(b.orgId, 30), 30);

    const receipt = await receiptOf(a.adminToken, real.runId);
    t.like(receipt.attributes, {
      run_id: real.runId,
      content_rule: "30d",
      content_purged: 112,
      metadata_purged: 0,
      tokens_purged: 1,
      holds: [`${holdId} CASE-2026-17: 10`],
    });
    const receiptB = await receiptOf(b.token, real.runId);
    t.like(receiptB.attributes, { metadata_rule: "60d", metadata_purged: 31, content_purged: 30 });

    const metrics = await (await fetch(`${h.runtime.server.url}/metrics`)).text();
    t.regex(metrics, /airlock_retention_runs_total\{status="succeeded",dry_run="true"\} 2/);
    t.regex(metrics, /airlock_retention_runs_total\{status="succeeded",dry_run="false"\} 1/);
    t.regex(metrics, /airlock_retention_purged_records_total\{data_class="metadata"\} 31/);
    t.regex(metrics, /airlock_retention_last_success_timestamp_seconds \d{10}/);

    const again = (await retention(a.adminToken).run({})).run!;
    t.deepEqual(counts(again, a.orgId), {
      content: 0,
      metadata: 0,
      receipts: 0,
      held: [[holdId, 10]],
      tokens: 0,
    });
  },
);

test.serial(
  "after purges Verify passes over both chains; a tampered record or content deleted behind retention's back still fails",
  async (t) => {
    const va = await audit(a.adminToken).verify({});
    t.true(va.ok, va.problem?.message);
    const vb = await audit(b.token).verify({});
    t.true(vb.ok, vb.problem?.message);
    t.true(vb.recordsPurged >= 31n);
    const { rows } = await db.query<{ id: string; model: string }>(
      "SELECT id, model FROM audit.records WHERE org_id = $1 AND kind = 'llm.response' LIMIT 1",
      [b.orgId],
    );
    await db.query("UPDATE audit.records SET model = 'gpt-5' WHERE id = $1", [rows[0]!.id]);
    const tampered = await audit(b.token).verify({});
    t.false(tampered.ok);
    t.is(tampered.problem!.code, "hash_mismatch");
    await db.query("UPDATE audit.records SET model = $2 WHERE id = $1", [
      rows[0]!.id,
      rows[0]!.model,
    ]);
    t.true((await audit(b.token).verify({})).ok);

    // Content deleted behind retention's back, from a record younger than the content cutoff.
    const { rows: recent } = await db.query<{
      record_id: string;
      time: Date;
      org_id: string;
      body: string;
    }>(
      `SELECT c.* FROM audit.contents c JOIN audit.records r ON r.id = c.record_id AND r.time = c.time
       WHERE r.org_id = $1 AND r.kind = 'llm.response' ORDER BY r.time DESC LIMIT 1`,
      [b.orgId],
    );
    const gone = recent[0]!;
    await db.query("DELETE FROM audit.contents WHERE record_id = $1", [gone.record_id]);
    const missing = await audit(b.token).verify({});
    t.false(missing.ok);
    t.like(missing.problem, { code: "content_missing", recordId: gone.record_id });
    await db.query(
      "INSERT INTO audit.contents (record_id, time, org_id, body) VALUES ($1, $2, $3, $4)",
      [gone.record_id, gone.time, gone.org_id, gone.body],
    );
    t.true((await audit(b.token).verify({})).ok);
  },
);

test.serial("once the hold is released, the next run removes what it kept", async (t) => {
  const asA = retention(a.adminToken);
  t.is(await code(asA.releaseHold({ holdId, reason: "" })), Code.InvalidArgument);
  t.is(await code(asA.releaseHold({ holdId: "hold_nope", reason: "done" })), Code.NotFound);
  const released = await asA.releaseHold({ holdId, reason: "case closed" });
  t.is(released.hold!.releaseReason, "case closed");
  const recorded = await eventually(async () => {
    const page = await audit(a.adminToken).query({ kinds: ["retention.hold"] });
    return page.records.find((r) => r.action === "released");
  });
  t.like(recorded, { subject: holdId });
  t.deepEqual((await asA.listHolds({})).holds, []);
  t.is((await asA.listHolds({ includeReleased: true })).holds.length, 1);
  const run = (await asA.run({})).run!;
  t.deepEqual(counts(run, a.orgId), { content: 10, metadata: 0, receipts: 0, held: [], tokens: 0 });
  t.is(await withContent(a.orgId, 30), 0);
  t.true((await audit(a.adminToken).verify({})).ok);
  const runs = await asA.listRuns({ pageSize: 2 });
  t.is(runs.runs[0]!.runId, run.runId, "newest first");
  t.truthy(runs.nextPageToken);
  const next = await asA.listRuns({ pageSize: 2, pageToken: runs.nextPageToken });
  t.notDeepEqual(next.runs[0]!.runId, run.runId);
  t.is(await code(asA.listRuns({ pageToken: "garbage" })), Code.InvalidArgument);
});

test.serial("Redis session entries never outlive their token", async (t) => {
  const admin = connectTo(IdentityService, h.runtime.server.url, a.adminToken);
  const short = await admin.createToken({ principalId: a.agentId, ttl: durationFromMs(5_000) });
  await connectTo(IdentityService, h.runtime.server.url, short.token).authenticate({
    token: short.token,
  });
  const redis = new Redis(redisUrl);
  const ttl = await redis.pttl(`airlock:identity:session:${short.tokenInfo!.id}`);
  await redis.quit();
  t.true(ttl > 0 && ttl <= 5_000, `session cached for ${ttl} ms`);
});

test.serial("runs from two replicas: one at a time; the other reports busy or waits", async (t) => {
  // A second replica of retention, in its own runtime with its own connections.
  const replica: Runtime = await startRuntime({
    services: [retentionDefinition],
    split: true,
    env: {
      DATABASE_URL: h.databaseUrl,
      REDIS_URL: redisUrl,
      AIRLOCK_RPC_ADDR: "127.0.0.1:0",
      AIRLOCK_HTTP_ADDR: "127.0.0.1:0",
      AIRLOCK_DATA_DIR: h.dataDir,
      AIRLOCK_LOG_LEVEL: "error",
      AIRLOCK_SERVICE_SECRET: secret,
      AIRLOCK_IDENTITY_URL: h.runtime.server.url,
      AIRLOCK_POLICY_URL: h.runtime.server.url,
      AIRLOCK_AUDIT_URL: h.runtime.server.url,
    },
  });
  t.teardown(() => replica.stop());
  const onReplica = connectTo(RetentionService, replica.server.url, a.adminToken);

  // A run in progress elsewhere holds the lock: busy at once, or a wait until it ends.
  const holder = new pg.Client({ connectionString: h.databaseUrl });
  await holder.connect();
  await holder.query("SELECT pg_advisory_lock(hashtext('airlock.retention.run'))");
  const busy = await t.throwsAsync(onReplica.run({ dryRun: true }));
  t.is((busy as { code?: Code }).code, Code.Aborted);
  t.regex(busy.message, /a retention run is in progress/);
  let waited = false;
  const waiting = onReplica.run({ dryRun: true, wait: true }).then((r) => ((waited = true), r));
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.false(waited);
  await holder.end();
  t.is((await waiting).run!.status, RunStatus.SUCCEEDED);

  // Both replicas at once, twice each: whatever ran never overlapped.
  const outcomes = await Promise.allSettled([
    retention(a.adminToken).run({}),
    onReplica.run({}),
    retention(a.adminToken).run({}),
    onReplica.run({}),
  ]);
  t.true(outcomes.some((o) => o.status === "fulfilled"));
  for (const o of outcomes)
    if (o.status === "rejected") t.is((o.reason as { code?: Code }).code, Code.Aborted);
  const { rows } = await db.query<{ started_at: Date; ended_at: Date }>(
    "SELECT started_at, ended_at FROM retention.runs WHERE status = 'succeeded' ORDER BY started_at",
  );
  for (let i = 1; i < rows.length; i++)
    t.true(rows[i]!.started_at >= rows[i - 1]!.ended_at, "runs never overlap");
});

test.serial(
  "the CLI sets and lists rules, places, lists and releases holds, and lists runs",
  async (t) => {
    const cli = (...args: string[]) =>
      runCli([...args, "--url", h.runtime.server.url, "--token", b.token]);
    const set = await cli("retention", "set", b.orgId, "content", "14d");
    t.is(set.code, 0, set.stderr);
    t.regex(set.stdout, /^content +14d +set by usr_\w+/);
    const rules = await cli("retention", "rules");
    t.regex(rules.stdout, /content +14d +set by/);
    t.regex(rules.stdout, /metadata +60d +set by/);
    const bad = await cli("retention", "set", b.orgId, "content", "2 weeks");
    t.is(bad.code, 1);
    t.regex(bad.stderr, /duration: expected "<days>d" \(1 to 36500\) or "forever", got "2 weeks"/);
    const usage = await cli("retention", "set", b.orgId, "prompts", "14d");
    t.is(usage.code, 2, "an unknown class is a usage error");

    const placed = await cli(
      "retention",
      "hold",
      "place",
      "--case",
      "CLI-7",
      "--reason",
      "a test",
      "--principal",
      `${heldAgent},${otherAgent}`,
      "--since",
      "30d",
      "--json",
    );
    t.is(placed.code, 0, placed.stderr);
    const hold = (JSON.parse(placed.stdout) as { hold: { holdId: string } }).hold.holdId;
    const holds = await cli("retention", "holds");
    t.regex(
      holds.stdout,
      new RegExp(`${hold}  case CLI-7  ${heldAgent},${otherAgent}  \\S+ \\.\\. no end  in force`),
    );
    const released = await cli("retention", "hold", "release", hold, "--reason", "done");
    t.is(released.code, 0, released.stderr);
    t.regex(released.stdout, /released by usr_\w+: done/);
    t.is((await cli("retention", "holds")).stdout.trim(), "no holds");

    const runs = await cli("retention", "runs", "--limit", "3");
    t.is(runs.code, 0, runs.stderr);
    const lines = runs.stdout.trim().split("\n");
    t.is(lines.length, 3);
    const runId = lines[0]!.split(" ")[0]!;
    const one = await cli("retention", "runs", runId);
    t.regex(one.stdout, new RegExp(`^${runId} .* succeeded`));
  },
);
