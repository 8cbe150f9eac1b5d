import test from "ava";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { AuditService } from "../gen/airlock/audit/v1/audit_pb.js";
import { RetentionService, RunStatus } from "../gen/airlock/retention/v1/retention_pb.js";
import { newId } from "../services/kit/ids.js";
import { llmResponse } from "./support/audit-records.js";
import { connectAsService, connectTo } from "./support/clients.js";
import { createTestDatabase, redisUrl, testServiceSecret } from "./support/env.js";
import { orgWithAgent } from "./support/org-setup.js";
import { runCli, spawnAirlock, type AirlockProcess } from "./support/process.js";

const day = 86_400_000;
const held = 24_000;
const doomed = 16_000;
const heldAgent = newId("agt");
const otherAgent = newId("agt");

// A run is SIGKILLed while audit deletes in batches (most of each day is
// under a hold, so the days cannot be purged by partition); the rerun after
// the restart finishes the job, names the run it finished, and the chain
// still verifies.
test("a run killed midway leaves consistent data, and the rerun finishes the job", async (t) => {
  t.timeout(240_000);
  const db = await createTestDatabase();
  const dataDir = await mkdtemp(join(tmpdir(), "airlock-retention-crash-"));
  const secret = testServiceSecret();
  const env = {
    DATABASE_URL: db.url,
    REDIS_URL: redisUrl,
    AIRLOCK_SERVICE_SECRET: secret,
    AIRLOCK_DATA_DIR: dataDir,
    AIRLOCK_LOG_LEVEL: "info",
    AIRLOCK_AUDIT_PURGE_BATCH: "50",
  };
  let airlock: AirlockProcess = await spawnAirlock(["serve"], env);
  const sql = new pg.Client({ connectionString: db.url });
  t.teardown(async () => {
    await sql.end();
    await airlock.stop();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  });
  await sql.connect();
  const org = await orgWithAgent(airlock.url, { org: "retention-crash" });
  const audit = connectAsService(AuditService, airlock.url, secret, "proxy");
  // Five days of calls 35 to 39 days old, three in five by a principal under a hold.
  const now = Date.now();
  const total = held + doomed;
  for (let i = 0; i < total; i += 5000) {
    await audit.append({
      records: Array.from({ length: Math.min(5000, total - i) }, (_, j) => {
        const n = i + j;
        return llmResponse(org.orgId, {
          timeMs: now - (35 + (n % 5)) * day - n,
          actor: n % 5 < 3 ? heldAgent : otherAgent,
          contentBytes: 100,
        });
      }),
    });
  }
  const retention = (url: string) => connectTo(RetentionService, url, org.adminToken);
  await retention(airlock.url).placeHold({
    caseId: "CRASH-1",
    reason: "keep the held agent's calls",
    principalIds: [heldAgent],
  });
  const contents = async () =>
    Number((await sql.query<{ n: string }>("SELECT count(*) AS n FROM audit.contents")).rows[0]!.n);
  const before = await contents();

  const doomedRun = retention(airlock.url)
    .run({})
    .catch(() => undefined);
  while ((await contents()) === before) await new Promise((r) => setTimeout(r, 10));
  await airlock.stop("SIGKILL");
  await doomedRun;
  const midway = before - (await contents());
  t.true(midway > 0 && midway < doomed, `killed after ${midway} of ${doomed} contents`);
  const { rows: stuck } = await sql.query<{ id: string; status: string }>(
    "SELECT id, status FROM retention.runs",
  );
  t.deepEqual(
    stuck.map((r) => r.status),
    ["running"],
  );

  airlock = await spawnAirlock(["serve"], env);
  const rerun = await runCli(["retention", "run", "--json"], {
    AIRLOCK_URL: airlock.url,
    AIRLOCK_TOKEN: org.adminToken,
  });
  t.is(rerun.code, 0, rerun.stderr);
  const report = JSON.parse(rerun.stdout) as {
    runId: string;
    status: string;
    orgs: { classes: { dataClass: string; purged: string }[]; held: { records: string }[] }[];
  };
  t.is(report.status, "RUN_STATUS_SUCCEEDED");
  const content = report.orgs[0]!.classes.find((c) => c.dataClass === "DATA_CLASS_CONTENT")!;
  t.is(Number(content.purged), doomed - midway, "the rerun purged exactly what was left");
  t.is(Number(report.orgs[0]!.held[0]!.records), held);
  t.is(await contents(), before - doomed, "every expired content gone, every held one kept");

  const killed = await retention(airlock.url).getRun({ runId: stuck[0]!.id });
  t.is(killed.run!.status, RunStatus.INTERRUPTED);
  const reader = connectTo(AuditService, airlock.url, org.adminToken);
  const verdict = await reader.verify({});
  t.true(verdict.ok, verdict.problem?.message);
  for (let i = 0; i < 100; i++) {
    const receipts = await reader.query({ kinds: ["retention.run"] });
    const receipt = receipts.records.find((r) => r.subject === report.runId);
    if (receipt) {
      t.deepEqual(
        receipt.attributes?.resumes,
        [stuck[0]!.id],
        "the receipt names the run it finished",
      );
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  t.fail("no receipt of the rerun");
});
