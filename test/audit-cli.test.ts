import test from "ava";
import { spawn } from "node:child_process";
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { AuditService } from "../gen/airlock/audit/v1/audit_pb.js";
import { IdentityService, PrincipalKind } from "../gen/airlock/identity/v1/identity_pb.js";
import { auditDefinition } from "../services/audit/run.js";
import { identityDefinition } from "../services/identity/run.js";
import { policyDefinition } from "../services/policy/run.js";
import { llmResponse } from "./support/audit-records.js";
import { connectTo } from "./support/clients.js";
import { testServiceSecret } from "./support/env.js";
import { orgWithAgent } from "./support/org-setup.js";
import { runCli } from "./support/process.js";
import { startServices, type Harness } from "./support/runtime.js";

let h: Harness;
let dir: string;
let env: Record<string, string>;
let ids: string[];
let orgId: string;
const session = "ses_cli";

const cli = (...args: string[]) => runCli(args, env);
const asService = () => createClient(AuditService, h.runtime.peer("audit"));

test.before(async () => {
  h = await startServices([identityDefinition, policyDefinition, auditDefinition], {
    AIRLOCK_AUDIT_CHECKPOINT_EVERY: "5",
    AIRLOCK_SERVICE_SECRET: testServiceSecret(),
  });
  const org = await orgWithAgent(h.runtime.server.url, { org: "audit-cli" });
  orgId = org.orgId;
  const admin = connectTo(IdentityService, h.runtime.server.url, org.adminToken);
  const auditor = await admin.createPrincipal({
    kind: PrincipalKind.SERVICE_ACCOUNT,
    displayName: "auditor",
    roles: ["auditor"],
  });
  const token = (await admin.createToken({ principalId: auditor.principal!.id })).token;
  env = { AIRLOCK_URL: h.runtime.server.url, AIRLOCK_TOKEN: token };
  const base = Date.now() - 60_000;
  const records = Array.from({ length: 12 }, (_, i) =>
    llmResponse(org.orgId, {
      timeMs: base + i,
      sessionId: session,
      model: i === 11 ? "gpt-4o" : "gpt-4.1-mini",
    }),
  );
  // Batches of 5 make the service sign checkpoints inside the chain, not only at its head.
  for (let i = 0; i < records.length; i += 5)
    await asService().append({ records: records.slice(i, i + 5) });
  ids = records.map((r) => r.id);
  dir = await mkdtemp(join(tmpdir(), "airlock-audit-cli-"));
});
test.after.always(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.serial("query prints the records as a table and as JSON lines, newest first", async (t) => {
  const table = await cli("audit", "query", "--session", session, "--since", "1h");
  t.is(table.code, 0, table.stderr);
  const [header, ...rows] = table.stdout.trimEnd().split("\n");
  t.regex(header!, /^TIME\s+KIND\s+ACTOR\s+MODEL\s+STATUS\s+TOKENS\s+ID$/);
  t.deepEqual(
    rows.map((r) => r.split(/\s+/).at(-1)),
    [...ids].reverse(),
  );
  t.regex(rows[0]!, /llm\.response\s+agt_test\s+gpt-4o\s+ok\s+10\/5\s/);

  const json = await cli("audit", "query", "--session", session, "--json", "--limit", "3");
  t.is(json.code, 0, json.stderr);
  const lines = json.stdout.trimEnd().split("\n");
  const records = lines.map((l) => JSON.parse(l) as { id: string; model: string; seq: string });
  t.deepEqual(
    records.map((r) => r.id),
    ids.slice(-3).reverse(),
  );
  t.is(records[0]!.model, "gpt-4o");
  t.regex(records[0]!.seq, /^\d+$/, "protobuf JSON: int64 as a string");
  t.is(json.stderr, "", "--json keeps stderr for failures");

  const gpt4o = await cli("audit", "query", "--session", session, "--model", "gpt-4o", "--json");
  t.is(gpt4o.stdout.trimEnd().split("\n").length, 1);
});

test.serial("get shows one record; bad flags are usage errors", async (t) => {
  const got = await cli("audit", "get", ids[0]!);
  t.is(got.code, 0, got.stderr);
  t.regex(got.stdout, new RegExp(`^id\\t${ids[0]!.replace(".", "\\.")}$`, "m"));
  t.regex(got.stdout, /^usage\t\{"inputTokens":"10"/m);

  const since = await cli("audit", "query", "--since", "yesterday");
  t.is(since.code, 2);
  t.regex(since.stderr, /^airlock: --since yesterday: expected a duration back from now like 24h/);
  const limit = await cli("audit", "query", "--limit", "0");
  t.is(limit.code, 2);
  t.regex(limit.stderr, /--limit 0: expected a whole number from 1/);
});

test.serial("usage sums tokens by day, principal and model", async (t) => {
  const usage = await cli("audit", "usage", "--since", "1h");
  t.is(usage.code, 0, usage.stderr);
  const day = new Date().toISOString().slice(0, 10);
  t.regex(
    usage.stdout,
    new RegExp(`^${day}\\s+agt_test\\s+gpt-4\\.1-mini\\s+11\\s+110\\s+55\\s`, "m"),
  );
  t.regex(usage.stdout, new RegExp(`^${day}\\s+agt_test\\s+gpt-4o\\s+1\\s+10\\s+5\\s`, "m"));
  t.regex(usage.stdout, /^total\s+12\s+120\s+60\s+24\s+12$/m);
});

test.serial("verify asks the server and exits 0 on an intact chain", async (t) => {
  const v = await cli("audit", "verify");
  t.is(v.code, 0, v.stderr);
  t.regex(
    v.stdout,
    /^ok: (\d+) records and [1-9]\d* checkpoints checked; the chain's head is at \1\n$/,
  );
});

test.serial("an export verifies offline against the pinned key, with no server", async (t) => {
  const { file, key } = await exportWithKey();
  const exported = (await readFile(file, "utf8")).trimEnd().split("\n");
  t.true(exported[0]!.startsWith('{"key":{"keyId":'), "the signing keys come first");
  t.true(exported.some((l) => l.startsWith('{"checkpoint":')));
  // No server and no token: everything needed is in the file and the key.
  const offline = await runCli(["audit", "verify", "--file", file, "--public-key", key], {
    AIRLOCK_URL: "http://127.0.0.1:9",
  });
  t.is(offline.code, 0, offline.stderr);
  t.regex(
    offline.stdout,
    /^ok: records 1\.\.(\d+) \(\1\) and [1-9]\d* checkpoints signed by \w+ checked$/m,
  );
});

test.serial("an edited record line fails offline verification, naming the record", async (t) => {
  const { file, key } = await exportWithKey();
  const lines = (await readFile(file, "utf8")).split("\n");
  const i = lines.findIndex((l) => l.includes(ids[4]!));
  lines[i] = lines[i]!.replace('"inputTokens":"10"', '"inputTokens":"1"');
  await writeFile(file, lines.join("\n"));
  const v = await cli("audit", "verify", "--file", file, "--public-key", key);
  t.is(v.code, 1);
  t.regex(
    v.stdout,
    new RegExp(`^not ok: hash_mismatch at \\d+ \\(record ${ids[4]!.replace(".", "\\.")}\\)`),
  );
});

test.serial(
  "offline verification trusts only the given key, not the keys in the file",
  async (t) => {
    const { file } = await exportWithKey();
    const other = join(dir, "other.pem");
    const { publicKey } = generateKeyPairSync("ed25519");
    await writeFile(other, publicKey.export({ type: "spki", format: "pem" }));
    const v = await cli("audit", "verify", "--file", file, "--public-key", other);
    t.is(v.code, 1);
    t.regex(v.stdout, /^not ok: unknown_key at \d+: .* not among the trusted keys/);
    const none = await cli("audit", "verify", "--file", file);
    t.is(none.code, 2, "no key, no verification");
  },
);

test.serial("tail streams new records until SIGINT, then exits 0 with a cursor", async (t) => {
  const tail = spawn(process.execPath, [bin, "audit", "tail", "--json"], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  tail.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => tail.once("close", resolve));
  // Records stored before the stream opened are not new: append fresh ones until one shows.
  const appended: string[] = [];
  const seen = new Promise<void>((resolve) =>
    tail.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
      if (appended.some((id) => stdout.includes(id))) resolve();
    }),
  );
  const append = setInterval(() => {
    const fresh = llmResponse(orgId, { sessionId: "ses_tail" });
    appended.push(fresh.id);
    void asService().append({ records: [fresh] });
  }, 300);
  await seen.finally(() => clearInterval(append));
  tail.kill("SIGINT");
  t.is(await exited, 0, stderr);
  const items = stdout
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as { record: { id: string }; cursor: string });
  t.true(items.some((item) => appended.includes(item.record.id)));
  t.true(items.every((item) => item.cursor !== ""));
  t.regex(stderr, /resume with: airlock audit tail --cursor \S+/);
});

const bin = fileURLToPath(new URL("../bin/airlock.mjs", import.meta.url));

let exported: Promise<{ file: string; key: string }> | undefined;

/**
 * A copy of one export of the whole chain (made once: each CLI run costs a
 * process start), with the signing key pinned from `airlock audit keys`.
 */
async function exportWithKey(): Promise<{ file: string; key: string }> {
  exported ??= (async () => {
    const file = join(dir, "export.jsonl");
    const key = join(dir, "audit-key.pem");
    const keys = await cli("audit", "keys");
    if (keys.code !== 0) throw new Error(keys.stderr);
    await writeFile(key, keys.stdout);
    const res = await cli("audit", "export", "--out", file);
    if (res.code !== 0) throw new Error(res.stderr);
    return { file, key };
  })();
  const { file, key } = await exported;
  const copy = join(dir, `export-${randomUUID()}.jsonl`);
  await copyFile(file, copy);
  return { file: copy, key };
}
