import test from "ava";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient, type Client } from "@connectrpc/connect";
import pg from "pg";
import {
  AuditService,
  RecordSchema,
  type Record as AuditRecord,
} from "../gen/airlock/audit/v1/audit_pb.js";
import { PolicyService } from "../gen/airlock/policy/v1/policy_pb.js";
import { auditDefinition } from "../services/audit/run.js";
import { dayMs, dayName } from "../services/audit/partitions.js";
import { starterBundle } from "../services/cli/policy-commands.js";
import { identityDefinition } from "../services/identity/run.js";
import { policyDefinition } from "../services/policy/run.js";
import { llmResponse } from "./support/audit-records.js";
import { connectAsService, connectTo } from "./support/clients.js";
import { code } from "./support/codes.js";
import { testServiceSecret } from "./support/env.js";
import { orgWithAgent } from "./support/org-setup.js";
import { insertOrg } from "./support/orgs.js";
import { runCli } from "./support/process.js";
import { startServices, type Harness } from "./support/runtime.js";

const today = Math.floor(Date.now() / dayMs);
/** Noon (UTC) `d` days ago: a day's records stay inside its partition. */
const noon = (d: number) => (today - d) * dayMs + dayMs / 2;
/** Midnight starting the day `d` days ago: a cutoff there expires days d+1 and older. */
const midnight = (d: number) => timestampFromMs((today - d) * dayMs);

let h: Harness;
let db: pg.Client;
let dir: string;
const secret = testServiceSecret();
const orgs: { id: string; token: string }[] = [];

const retention = () => connectAsService(AuditService, h.runtime.server.url, secret, "retention");
const as = (token: string) => connectTo(AuditService, h.runtime.server.url, token);

/** A record without content (identity events, retention receipts). */
function event(orgId: string, kind: string, timeMs: number, actor: string): AuditRecord {
  return create(RecordSchema, {
    id: `${kind}_${orgId}_${timeMs}`,
    kind,
    time: timestampFromMs(timeMs),
    orgId,
    actor,
    actorKind: "user",
    action: "create",
    status: "ok",
  });
}

/**
 * 90 days of an org's records: each day three LLM calls of agt_other and an
 * identity event; every third day (in the first org) ten calls of agt_held;
 * every tenth day a retention receipt.
 */
function ninetyDays(orgId: string, withHeldActor: boolean): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (let d = 1; d <= 90; d++) {
    const at = (minute: number) => noon(d) + minute * 60_000;
    for (let i = 0; i < 3; i++) out.push(llmResponse(orgId, { timeMs: at(i), actor: "agt_other" }));
    if (withHeldActor && d % 3 === 0)
      for (let i = 0; i < 10; i++)
        out.push(llmResponse(orgId, { timeMs: at(10 + i), actor: "agt_held" }));
    out.push(event(orgId, "identity.token", at(30), "usr_admin"));
    if (d % 10 === 0) out.push(event(orgId, "retention.run", at(40), "retention"));
  }
  return out;
}

/**
 * The run under test: content of days 31 and older, metadata of days 61 and
 * older, receipts kept; agt_held's records of days 41–80 held, and every
 * record of the first org on day 75.
 */
function purgeRequest(dryRun: boolean) {
  const [a] = orgs;
  const cutoffs = { contentBefore: midnight(30), metadataBefore: midnight(60) };
  return {
    runId: "run_purge_test",
    // The first org by its own cutoffs, the second by the defaults (the same here).
    orgs: [{ orgId: a!.id, ...cutoffs }],
    defaults: cutoffs,
    receiptKinds: ["retention.run"],
    holds: [
      {
        holdId: "hold_principal",
        orgId: a!.id,
        principalIds: ["agt_held"],
        since: midnight(80),
        until: midnight(40),
      },
      {
        // One day's window of every record of the org, agt_held's included.
        holdId: "hold_day75",
        orgId: a!.id,
        since: timestampFromMs(noon(75) - 3_600_000),
        until: timestampFromMs(noon(75) + 3_600_000),
      },
    ],
    dryRun,
  };
}

test.before(async () => {
  h = await startServices([identityDefinition, policyDefinition, auditDefinition], {
    AIRLOCK_AUDIT_CHECKPOINT_EVERY: "50",
    AIRLOCK_AUDIT_PURGE_BATCH: "4",
    AIRLOCK_SERVICE_SECRET: secret,
  });
  const a = await orgWithAgent(h.runtime.server.url, { org: "purge-acme" });
  const b = await insertOrg(h.databaseUrl, "purge-globex");
  await connectTo(PolicyService, h.runtime.server.url, b.token).applyBundle({
    orgId: b.orgId,
    bundle: starterBundle(),
  });
  orgs.push({ id: a.orgId, token: a.adminToken }, { id: b.orgId, token: b.token });
  // In time order, so held and expired records alternate along each chain.
  const records = [...ninetyDays(a.orgId, true), ...ninetyDays(b.orgId, false)].sort((x, y) =>
    Number(x.time!.seconds - y.time!.seconds),
  );
  const audit = createClient(AuditService, h.runtime.peer("audit"));
  for (let i = 0; i < records.length; i += 200)
    await audit.append({ records: records.slice(i, i + 200) });
  db = new pg.Client({ connectionString: h.databaseUrl });
  await db.connect();
  dir = await mkdtemp(join(tmpdir(), "airlock-audit-purge-"));
});
test.after.always(async () => {
  await db?.end();
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const filenode = async (table: string) =>
  (await db.query<{ f: string }>("SELECT pg_relation_filenode($1::regclass)::text AS f", [table]))
    .rows[0]!.f;
const rowsOf = async (table: string, where = "true") =>
  Number(
    (await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE ${where}`)).rows[0]!.n,
  );

test.serial("only the retention service may purge", async (t) => {
  const req = purgeRequest(true);
  t.is(await code(as(orgs[0]!.token).purge(req)), Code.PermissionDenied);
  t.is(
    await code(createClient(AuditService, h.runtime.peer("audit")).purge(req)),
    Code.PermissionDenied,
  );
});

test.serial("a malformed run is refused with what is wrong", async (t) => {
  const refused = async (
    req: Parameters<Client<typeof AuditService>["purge"]>[0],
    message: RegExp,
  ) => {
    const err = await t.throwsAsync(retention().purge(req));
    t.is((err as { code?: Code }).code, Code.InvalidArgument);
    t.regex(err!.message, message);
  };
  const good = purgeRequest(false);
  await refused(
    { ...good, holds: [{ ...good.holds[0], until: good.holds[0]!.since }] },
    /holds\[0\] \(hold_principal\): until .* is not after since/,
  );
  await refused(
    { ...good, orgs: [...good.orgs, { orgId: orgs[0]!.id }] },
    /orgs\[1\]\.org_id: org_\w+ is listed twice/,
  );
  await refused({ ...good, defaults: { orgId: orgs[1]!.id } }, /defaults\.org_id: must be empty/);
  await refused({ ...good, runId: "" }, /run_id: required/);
  await refused(
    { ...good, holds: [good.holds[0]!, good.holds[0]!] },
    /hold_principal is listed twice/,
  );
});

test.serial(
  "a run deletes exactly what the rules expire and no hold covers, as its dry run said",
  async (t) => {
    const [a, b] = orgs;
    const day89 = `audit.records_${dayName(today - 89)}`;
    const day70 = `audit.records_${dayName(today - 70)}`;
    const day66 = `audit.records_${dayName(today - 66)}`;
    const before = { day70: await filenode(day70), day66: await filenode(day66) };

    const dry = await retention().purge(purgeRequest(true));
    t.is(await rowsOf(day89), 8, "a dry run deletes nothing");
    const done = await retention().purge(purgeRequest(false));
    t.deepEqual(done, dry, "the dry run counted what the run deleted");

    // From the layout in ninetyDays. The second org loses days 61–90 whole (4
    // records a day; its receipts stay) and the content of days 31–60 (3 a
    // day). The first loses the same but day 75 (held: 14 records), plus
    // agt_held's days 81–90 whole (4 days of 10) and content of days 31–40
    // (3 days of 10); agt_held's days 41–80 are held (13 days of 10).
    t.deepEqual(
      done.orgs.map((o) => ({
        orgId: o.orgId,
        content: o.contentPurged,
        metadata: o.metadataPurged,
        receipts: o.receiptsPurged,
        held: o.held.map((x) => `${x.holdId}:${x.records}`),
      })),
      [
        {
          orgId: a!.id,
          content: 120n,
          metadata: 156n,
          receipts: 0n,
          held: ["hold_day75:14", "hold_principal:130"],
        },
        { orgId: b!.id, content: 90n, metadata: 120n, receipts: 0n, held: [] },
      ].sort((x, y) => (x.orgId < y.orgId ? -1 : 1)),
    );

    // Day 89 held nothing to keep: truncated, empty. Day 70 kept its receipts
    // through the truncation; day 66 (mostly held records) was purged in batches.
    t.true(done.partitionsTruncated >= 1);
    t.is(await rowsOf(day89), 0);
    t.not(await filenode(day70), before.day70, "day 70 was truncated");
    t.is(await rowsOf(day70), 2);
    t.is(await rowsOf(day70, "kind = 'retention.run'"), 2);
    t.is(await filenode(day66), before.day66, "day 66 was purged in batches");
    t.is(await rowsOf(day66, "actor = 'agt_held'"), 10);
    t.is(await rowsOf(day66), 10);
    // Held records keep their content; content older than 30 days is gone otherwise.
    const heldContent = await rowsOf(
      `audit.contents_${dayName(today - 66)} x JOIN audit.records r ON r.id = x.record_id AND r.time = x.time`,
    );
    t.is(heldContent, 10);
    t.is(await rowsOf(`audit.contents_${dayName(today - 45)}`), 10, "agt_held's only");
    t.is(await rowsOf(`audit.contents_${dayName(today - 20)}`), 6, "recent content stays");

    const again = await retention().purge(purgeRequest(false));
    t.is(again.partitionsTruncated, 0);
    for (const o of again.orgs) {
      t.like(o, { contentPurged: 0n, metadataPurged: 0n, receiptsPurged: 0n });
      t.deepEqual(
        o.held,
        done.orgs.find((d) => d.orgId === o.orgId)!.held,
        "held records stay held",
      );
    }
    t.deepEqual(
      again.orgs.map((o) => o.orgId),
      [a!.id],
      "an org with nothing left to purge or hold is left out",
    );
  },
);

test.serial("after the run both chains verify, passing the purged positions", async (t) => {
  const { rows } = await db.query<{ chain_id: string; n: string; ranges: string }>(
    `SELECT chain_id, sum(to_seq - from_seq + 1) AS n, count(*) AS ranges
     FROM audit.purged_ranges WHERE run_id = 'run_purge_test' GROUP BY chain_id`,
  );
  for (const org of orgs) {
    const v = await as(org.token).verify({});
    t.true(v.ok, v.problem?.message);
    const ranges = rows.find((r) => r.chain_id === org.id)!;
    t.is(v.recordsPurged, BigInt(ranges.n));
    t.true(v.checkpointsChecked > 0n);
    t.is(v.recordsChecked + v.recordsPurged, v.headSeq);
  }
});

test.serial("an export after the run verifies offline against the pinned key", async (t) => {
  const env = { AIRLOCK_URL: h.runtime.server.url, AIRLOCK_TOKEN: orgs[0]!.token };
  const keys = await runCli(["audit", "keys"], env);
  t.is(keys.code, 0, keys.stderr);
  const key = join(dir, "key.pem");
  await writeFile(key, keys.stdout);
  const file = join(dir, "export.jsonl");
  const exported = await runCli(["audit", "export", "--out", file], env);
  t.is(exported.code, 0, exported.stderr);
  t.regex(exported.stdout, /purged by retention/);
  const v = await runCli(["audit", "verify", "--file", file, "--public-key", key, "--json"], env);
  t.is(v.code, 0, v.stdout + v.stderr);
  const verdict = JSON.parse(v.stdout) as {
    ok: boolean;
    recordsPurged: number;
    purgedBy: string[];
  };
  t.true(verdict.ok);
  t.true(verdict.recordsPurged > 0);
  t.deepEqual(verdict.purgedBy, ["run_purge_test"]);
});

test.serial("after the run an edited or deleted record still fails Verify", async (t) => {
  const org = orgs[1]!;
  const { rows } = await db.query<{ id: string; seq: string; model: string }>(
    "SELECT id, seq, model FROM audit.records WHERE org_id = $1 AND kind = 'llm.response' ORDER BY seq LIMIT 1",
    [org.id],
  );
  const row = rows[0]!;
  await db.query("UPDATE audit.records SET model = 'gpt-evil' WHERE id = $1", [row.id]);
  let v = await as(org.token).verify({});
  t.like(v.problem, { code: "hash_mismatch", seq: BigInt(row.seq) });
  await db.query("UPDATE audit.records SET model = $2 WHERE id = $1", [row.id, row.model]);

  const saved = (await db.query("SELECT * FROM audit.records WHERE id = $1", [row.id])).rows[0];
  await db.query("DELETE FROM audit.records WHERE id = $1", [row.id]);
  v = await as(org.token).verify({});
  t.like(v.problem, { code: "missing_records", seq: BigInt(row.seq) });
  const cols = Object.keys(saved).filter((c) => c !== "stored_at");
  await db.query(
    `INSERT INTO audit.records (${cols.join(", ")}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")})`,
    cols.map((c) => saved[c]),
  );
  t.true((await as(org.token).verify({})).ok);
});
