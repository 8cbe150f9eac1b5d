import test from "ava";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { createClient } from "@connectrpc/connect";
import { AuditService } from "../gen/airlock/audit/v1/audit_pb.js";
import { DataClass, RetentionService } from "../gen/airlock/retention/v1/retention_pb.js";
import { auditDefinition } from "../services/audit/run.js";
import { identityDefinition } from "../services/identity/run.js";
import { startRuntime, type Runtime } from "../services/kit/runtime.js";
import { policyDefinition } from "../services/policy/run.js";
import { retentionDefinition } from "../services/retention/run.js";
import { llmResponse } from "./support/audit-records.js";
import { connectTo } from "./support/clients.js";
import { adminDatabaseUrl, createTestDatabase, redisUrl } from "./support/env.js";
import { orgWithAgent } from "./support/org-setup.js";

const day = 86_400_000;
const services = [identityDefinition, policyDefinition, auditDefinition, retentionDefinition];

/** A database, a login role that may create schemas in it, and both URLs. */
async function twoRoles() {
  const db = await createTestDatabase();
  const role = `airlock_serving_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminDatabaseUrl });
  await admin.connect();
  await admin.query(`CREATE ROLE ${role} LOGIN`);
  await admin.query(
    `GRANT CONNECT, CREATE ON DATABASE ${new URL(db.url).pathname.slice(1)} TO ${role}`,
  );
  await admin.end();
  const serving = new URL(db.url);
  serving.username = role;
  return {
    ownerUrl: db.url,
    servingUrl: serving.toString(),
    async drop() {
      await db.drop();
      const client = new pg.Client({ connectionString: adminDatabaseUrl });
      await client.connect();
      await client.query(`DROP ROLE IF EXISTS ${role}`);
      await client.end();
    },
  };
}

const start = (databaseUrl: string, ownerUrl: string) =>
  startRuntime({
    services,
    split: false,
    env: {
      DATABASE_URL: databaseUrl,
      AIRLOCK_AUDIT_OWNER_DATABASE_URL: ownerUrl,
      REDIS_URL: redisUrl,
      AIRLOCK_RPC_ADDR: "127.0.0.1:0",
      AIRLOCK_HTTP_ADDR: "127.0.0.1:0",
      AIRLOCK_LOG_LEVEL: "error",
      AIRLOCK_SHUTDOWN_GRACE: "1s",
    },
  });

test("with two database roles, the serving role appends and reads but cannot delete or change a record; Purge runs as the owner", async (t) => {
  const roles = await twoRoles();
  t.teardown(() => roles.drop());
  const runtime: Runtime = await start(roles.servingUrl, roles.ownerUrl);
  t.teardown(() => runtime.stop());
  const org = await orgWithAgent(runtime.server.url, { org: "two-roles" });
  await createClient(AuditService, runtime.peer("audit")).append({
    records: [llmResponse(org.orgId, { timeMs: Date.now() - 40 * day }), llmResponse(org.orgId)],
  });
  const audit = connectTo(AuditService, runtime.server.url, org.adminToken);
  t.is((await audit.query({ kinds: ["llm.response"] })).records.length, 2);

  const serving = new pg.Client({ connectionString: roles.servingUrl });
  await serving.connect();
  t.teardown(() => serving.end());
  const refused = async (sql: string) => {
    const err = await t.throwsAsync(serving.query(sql));
    t.is((err as { code?: string }).code, "42501", sql);
  };
  await refused("DELETE FROM audit.records");
  await refused("UPDATE audit.records SET model = 'gpt-5'");
  await refused("TRUNCATE audit.contents");
  await refused("DELETE FROM audit.contents");
  await refused("UPDATE audit.checkpoints SET signature = ''");
  await refused("DELETE FROM audit.purged_ranges");

  // Retention purges through audit, which deletes as the owner.
  const run = await connectTo(RetentionService, runtime.server.url, org.adminToken).run({});
  const content = run.run!.orgs[0]!.classes.find((c) => c.dataClass === DataClass.CONTENT)!;
  t.is(content.purged, 1n);
  const verdict = await audit.verify({});
  t.true(verdict.ok, verdict.problem?.message);
});

test("the owner connection must be another role than DATABASE_URL's", async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const err = await t.throwsAsync(start(db.url, db.url));
  t.regex(
    err.message,
    /AIRLOCK_AUDIT_OWNER_DATABASE_URL connects as the same role as DATABASE_URL/,
  );
});
