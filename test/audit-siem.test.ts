import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { createClient } from "@connectrpc/connect";
import { AuditService } from "../gen/airlock/audit/v1/audit_pb.js";
import { auditDefinition } from "../services/audit/run.js";
import { identityDefinition } from "../services/identity/run.js";
import { policyDefinition } from "../services/policy/run.js";
import { llmResponse } from "./support/audit-records.js";
import { orgWithAgent } from "./support/org-setup.js";
import { startServices } from "./support/runtime.js";
import { testServiceSecret } from "./support/env.js";

/**
 * The OCSF events the file sink has written so far: its whole lines (read
 * while the sink appends, the last line may be only partly written, as any
 * tailing reader sees it).
 */
async function exported(file: string): Promise<{ metadata: { uid: string } }[]> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text
    .slice(0, text.lastIndexOf("\n") + 1)
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { metadata: { uid: string } });
}

test("records stored by Append reach a configured sink from the real store, each once, across a restart", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "airlock-siem-"));
  const file = join(dir, "siem.jsonl");
  const env = { AIRLOCK_AUDIT_SINKS: `file:${file}`, AIRLOCK_AUDIT_EXPORT_INTERVAL: "200ms" };
  const first = await startServices([identityDefinition, policyDefinition, auditDefinition], env);
  let h = first;
  try {
    const org = await orgWithAgent(h.runtime.server.url, { org: "siem-acme" });
    const before = Array.from({ length: 30 }, () => llmResponse(org.orgId));
    await createClient(AuditService, h.runtime.peer("audit")).append({ records: before });
    const beforeIds = before.map((r) => r.id);
    await until(async () => has(await exported(file), beforeIds));
    t.true(has(await exported(file), beforeIds), "every record exported");

    // Restarted on the same database, the sink resumes from its saved cursor.
    await first.runtime.stop();
    h = await startServices([identityDefinition, policyDefinition, auditDefinition], {
      ...env,
      DATABASE_URL: first.databaseUrl,
    });
    const after = Array.from({ length: 10 }, () => llmResponse(org.orgId));
    await createClient(AuditService, h.runtime.peer("audit")).append({ records: after });
    const afterIds = after.map((r) => r.id);
    await until(async () => has(await exported(file), afterIds));
    const events = await exported(file);
    t.true(has(events, afterIds));
    const uids = events.map((e) => e.metadata.uid);
    t.is(new Set(uids).size, uids.length, "no record exported twice");
  } finally {
    if (h !== first) await h.close();
    await first.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("with two audit replicas, one exports; when it stops, the other takes over, and no record goes out twice", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "airlock-siem-"));
  const file = join(dir, "siem.jsonl");
  const secret = testServiceSecret();
  const env = {
    AIRLOCK_AUDIT_SINKS: `file:${file}`,
    AIRLOCK_AUDIT_EXPORT_INTERVAL: "200ms",
    AIRLOCK_AUDIT_EXPORT_LEASE: "600ms",
    AIRLOCK_SERVICE_SECRET: secret,
  };
  const services = [identityDefinition, policyDefinition, auditDefinition];
  const one = await startServices(services, env);
  const two = await startServices(services, { ...env, DATABASE_URL: one.databaseUrl });
  try {
    const org = await orgWithAgent(one.runtime.server.url, { org: "siem-replicas" });
    const append = (h: typeof one, n: number) => {
      const records = Array.from({ length: n }, () => llmResponse(org.orgId));
      return createClient(AuditService, h.runtime.peer("audit"))
        .append({ records })
        .then(() => records.map((r) => r.id));
    };
    const ids = [...(await append(one, 20)), ...(await append(two, 20))];
    await until(async () => has(await exported(file), ids));
    await one.runtime.stop();
    const later = await append(two, 20);
    await until(async () => has(await exported(file), later));
    const uids = (await exported(file)).map((e) => e.metadata.uid);
    t.true(has(await exported(file), [...ids, ...later]), "every record exported");
    t.is(new Set(uids).size, uids.length, "no record exported twice");
  } finally {
    await two.close();
    await one.close();
    await rm(dir, { recursive: true, force: true });
  }
});

function has(events: { metadata: { uid: string } }[], ids: string[]): boolean {
  return ids.every((id) => events.some((e) => e.metadata.uid === id));
}

async function until(done: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await done()); i++)
    await new Promise((resolve) => setTimeout(resolve, 50));
}
