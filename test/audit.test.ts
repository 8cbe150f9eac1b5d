import test from "ava";
import pg from "pg";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AuditService } from "../gen/airlock/audit/v1/audit_pb.js";
import { IdentityService, PrincipalKind } from "../gen/airlock/identity/v1/identity_pb.js";
import { PolicyService } from "../gen/airlock/policy/v1/policy_pb.js";
import { auditDefinition } from "../services/audit/run.js";
import { identityDefinition } from "../services/identity/run.js";
import { policyDefinition } from "../services/policy/run.js";
import { starterBundle } from "../services/cli/policy-commands.js";
import { serviceCredentialInterceptor } from "../services/kit/auth.js";
import { ServiceCredentials } from "../services/kit/service-credentials.js";
import { llmResponse } from "./support/audit-records.js";
import { connectAsService, connectTo } from "./support/clients.js";
import { code } from "./support/codes.js";
import { orgWithAgent } from "./support/org-setup.js";
import { insertOrg } from "./support/orgs.js";
import { startServices, type Harness } from "./support/runtime.js";
import { testServiceSecret } from "./support/env.js";

let h: Harness;
let org: Awaited<ReturnType<typeof orgWithAgent>>;
let auditor: string;
let contentAuditor: string;
let db: pg.Client;
const secret = testServiceSecret();

/** A token for a new principal of the org with `roles`. */
async function principalWith(roles: string[]): Promise<string> {
  const admin = connectTo(IdentityService, h.runtime.server.url, org.adminToken);
  const p = await admin.createPrincipal({
    kind: PrincipalKind.SERVICE_ACCOUNT,
    displayName: roles.join("+"),
    roles,
  });
  return (await admin.createToken({ principalId: p.principal!.id })).token;
}

const asService = () => createClient(AuditService, h.runtime.peer("audit"));
const as = (token: string) => connectTo(AuditService, h.runtime.server.url, token);

test.before(async () => {
  h = await startServices([identityDefinition, policyDefinition, auditDefinition], {
    AIRLOCK_AUDIT_CHECKPOINT_EVERY: "10",
    AIRLOCK_SERVICE_SECRET: secret,
  });
  org = await orgWithAgent(h.runtime.server.url, { org: "audit-acme" });
  auditor = await principalWith(["auditor"]);
  contentAuditor = await principalWith(["content-auditor"]);
  db = new pg.Client({ connectionString: h.databaseUrl });
  await db.connect();
});
test.after.always(async () => {
  await db?.end();
  await h?.close();
});

test.serial("Append is idempotent on record id and Query returns the newest first", async (t) => {
  const now = Date.now();
  const records = [0, 1, 2].map((i) =>
    llmResponse(org.orgId, { timeMs: now - 1000 + i, sessionId: "ses_idem" }),
  );
  t.like(await asService().append({ records }), { stored: 3, duplicates: 0 });
  t.like(await asService().append({ records }), { stored: 0, duplicates: 3 });
  const page = await as(auditor).query({ sessionId: "ses_idem" });
  t.deepEqual(
    page.records.map((r) => r.id),
    records.map((r) => r.id).reverse(),
  );
  t.is(page.records[0]!.model, "gpt-4.1-mini");
  t.is(page.records[0]!.usage!.inputTokens, 10n);
});

test.serial("Append takes JSON as well as the binary codecs, and stores the same", async (t) => {
  const now = Date.now();
  const sent = [0, 1].map((i) =>
    llmResponse(org.orgId, { timeMs: now - 500 + i, sessionId: "ses_json", tool: "shell" }),
  );
  const overJson = createClient(
    AuditService,
    createConnectTransport({
      baseUrl: h.runtime.server.url,
      httpVersion: "2",
      useBinaryFormat: false,
      interceptors: [
        serviceCredentialInterceptor(new ServiceCredentials(secret, "proxy"), "audit"),
      ],
    }),
  );
  t.like(await overJson.append({ records: sent }), { stored: 2, duplicates: 0 });
  // The same records again in binary: found stored, so JSON stored what binary would have.
  t.like(await asService().append({ records: sent }), { stored: 0, duplicates: 2 });
  const read = await as(contentAuditor).query({ sessionId: "ses_json", includeContent: true });
  t.deepEqual(read.records.map((r) => r.id).sort(), sent.map((r) => r.id).sort());
  t.deepEqual(read.records[0]!.toolNames, ["shell"]);
  t.true((await as(auditor).verify({})).ok);
});

test.serial(
  "Append refuses content that is not the UTF-8 text of a JSON object, naming the record",
  async (t) => {
    const refused = async (patch: Partial<ReturnType<typeof llmResponse>>) => {
      const err = await t.throwsAsync(
        asService().append({
          records: [llmResponse(org.orgId), { ...llmResponse(org.orgId), ...patch }],
        }),
      );
      return err.message;
    };
    t.regex(
      await refused({ contentJson: Buffer.from("{not json") }),
      /records\[1\]\.content_json: expected the UTF-8 text of a JSON object/,
    );
    t.regex(
      await refused({ contentJson: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]) }),
      /records\[1\]\.content_json/,
    );
    t.regex(
      await refused({ contentJson: Buffer.from("[1,2]") }),
      /records\[1\]\.content_json: expected a JSON object/,
    );
    t.regex(
      await refused({ content: { text: "hi" } }),
      /records\[1\]: content and content_json both set; send content_json only/,
    );
  },
);

test.serial(
  "Append refuses a count or latency no JSON number holds exactly, naming the field",
  async (t) => {
    const record = llmResponse(org.orgId);
    record.usage!.outputTokens = 2n ** 63n - 1n;
    const err = await t.throwsAsync(asService().append({ records: [record] }));
    t.is(ConnectError.from(err).code, Code.InvalidArgument);
    t.regex(err.message, /records\[0\]\.usage\.output_tokens: expected a whole number/);
    const late = { ...llmResponse(org.orgId), latencyMs: -(2n ** 53n) };
    t.regex(
      (await t.throwsAsync(asService().append({ records: [late] }))).message,
      /records\[0\]\.latency_ms/,
    );
    record.usage!.outputTokens = 2n ** 53n - 1n;
    t.like(await asService().append({ records: [record] }), { stored: 1 });
  },
);

test.serial(
  "concurrent Appends written together each get their own counts; a batch sent twice at once is stored once",
  async (t) => {
    const now = Date.now();
    const batches = Array.from({ length: 12 }, (_, b) =>
      Array.from({ length: 5 + b }, (_, i) =>
        llmResponse(org.orgId, { timeMs: now - 5000 + b * 100 + i, sessionId: "ses_group" }),
      ),
    );
    const twice = batches[3]!;
    const answers = await Promise.all(
      [...batches, twice].map((records) => asService().append({ records })),
    );
    batches.forEach((batch, b) => {
      if (b !== 3) t.like(answers[b], { stored: batch.length, duplicates: 0 });
    });
    // Whichever of the two copies was written first stored the records; the other found them.
    const copies = [answers[3]!, answers.at(-1)!];
    t.is(copies[0]!.stored + copies[1]!.stored, twice.length);
    t.is(copies[0]!.duplicates + copies[1]!.duplicates, twice.length);
    const stored = await as(auditor).query({ sessionId: "ses_group", pageSize: 500 });
    t.is(stored.records.length, batches.flat().length);
    t.true((await as(auditor).verify({})).ok);
  },
);

test.serial(
  "a writer from before content_json still appends Struct content, kept as its canonical text",
  async (t) => {
    const old = {
      ...llmResponse(org.orgId, { sessionId: "ses_struct" }),
      contentJson: new Uint8Array(),
    };
    old.content = { text: "from an older proxy", toolCalls: [] };
    t.like(await asService().append({ records: [old] }), { stored: 1 });
    const read = await as(contentAuditor).query({ sessionId: "ses_struct", includeContent: true });
    t.deepEqual(read.records[0]!.content, { text: "from an older proxy", toolCalls: [] });
    t.true((await as(auditor).verify({})).ok);
  },
);

test.serial("a principal can never append, only services", async (t) => {
  t.is(
    await code(as(org.adminToken).append({ records: [llmResponse(org.orgId)] })),
    Code.PermissionDenied,
  );
});

test.serial("Query pages with an opaque cursor and filters", async (t) => {
  const base = Date.now() - 60_000;
  const records = Array.from({ length: 25 }, (_, i) =>
    llmResponse(org.orgId, {
      timeMs: base + i,
      sessionId: "ses_page",
      model: i % 5 === 0 ? "gpt-4o" : "gpt-4.1-mini",
      tool: i % 2 === 0 ? "shell" : undefined,
    }),
  );
  await asService().append({ records });
  const seen: string[] = [];
  let cursor = "";
  do {
    const page = await as(auditor).query({ sessionId: "ses_page", pageSize: 10, cursor });
    seen.push(...page.records.map((r) => r.id));
    cursor = page.nextCursor;
  } while (cursor);
  t.deepEqual(seen, records.map((r) => r.id).reverse());
  const gpt4o = await as(auditor).query({ sessionId: "ses_page", model: "gpt-4o" });
  t.is(gpt4o.records.length, 5);
  const shell = await as(auditor).query({ sessionId: "ses_page", toolName: "shell" });
  t.is(shell.records.length, 13);
  t.is(await code(as(auditor).query({ cursor: "not-a-cursor" })), Code.InvalidArgument);
});

test.serial(
  "without read on audit:content there is no content; with it, the read is recorded",
  async (t) => {
    const record = llmResponse(org.orgId, { sessionId: "ses_content" });
    await asService().append({ records: [record] });

    const plain = await as(auditor).query({ sessionId: "ses_content" });
    t.is(plain.records[0]!.content, undefined);
    t.is(plain.records[0]!.contentSha256.length, 64);
    t.is(
      await code(as(auditor).query({ sessionId: "ses_content", includeContent: true })),
      Code.PermissionDenied,
    );
    t.is(await code(as(org.agentToken).query({})), Code.PermissionDenied);

    const full = await as(contentAuditor).query({ sessionId: "ses_content", includeContent: true });
    t.deepEqual(
      full.records[0]!.content,
      JSON.parse(Buffer.from(record.contentJson).toString("utf8")),
      "the content as it was appended",
    );
    const reads = await as(auditor).query({ kinds: ["audit.read"] });
    const read = reads.records.find((r) => r.subject === record.id);
    t.truthy(read, "reading content left an audit.read record");
    t.is(read!.actorKind, "service_account");
  },
);

test.serial("an auditor of another org sees nothing of this org", async (t) => {
  const other = await insertOrg(h.databaseUrl, "audit-globex");
  await connectTo(PolicyService, h.runtime.server.url, other.token).applyBundle({
    orgId: other.orgId,
    bundle: starterBundle(),
  });
  const record = llmResponse(org.orgId, { sessionId: "ses_isolated" });
  await asService().append({ records: [record] });
  const them = as(other.token);
  t.is((await them.query({ sessionId: "ses_isolated" })).records.length, 0);
  t.is(await code(them.query({ orgId: org.orgId })), Code.PermissionDenied);
  t.is(await code(them.get({ id: record.id })), Code.NotFound);
  t.is(await code(them.get({ id: record.id, orgId: org.orgId })), Code.PermissionDenied);
  t.is(await code(them.verify({ orgId: org.orgId })), Code.PermissionDenied);
});

test.serial(
  "Tail streams stored records from the start, then new ones as they arrive",
  async (t) => {
    const abort = new AbortController();
    const stream = as(auditor).tail({ fromStart: true }, { signal: abort.signal });
    const fresh = llmResponse(org.orgId, { sessionId: "ses_tail" });
    setTimeout(() => void asService().append({ records: [fresh] }), 300);
    let count = 0;
    let cursor = "";
    try {
      for await (const item of stream) {
        count++;
        cursor = item.cursor;
        t.is(item.record!.content, undefined);
        if (item.record!.id === fresh.id) break;
      }
    } finally {
      abort.abort();
    }
    t.true(count > 1, "older records came first");
    // Resuming from the cursor starts after the last record seen.
    const next = llmResponse(org.orgId, { sessionId: "ses_tail" });
    await asService().append({ records: [next] });
    const resumed = as(auditor).tail({ cursor });
    for await (const item of resumed) {
      t.is(item.record!.id, next.id);
      break;
    }
  },
);

test.serial("UsageReport sums tokens by principal, model and day", async (t) => {
  const day = Date.UTC(2026, 0, 15, 12);
  await asService().append({
    records: [
      llmResponse(org.orgId, { timeMs: day, actor: "agt_usage", inputTokens: 100 }),
      llmResponse(org.orgId, { timeMs: day + 1000, actor: "agt_usage", inputTokens: 50 }),
    ],
  });
  const report = await as(auditor).usageReport({
    since: timestampFromMs(day - 3_600_000),
    until: timestampFromMs(day + 3_600_000),
  });
  t.is(report.rows.length, 1);
  t.like(report.rows[0], {
    actor: "agt_usage",
    model: "gpt-4.1-mini",
    day: "2026-01-15",
    requests: 2n,
  });
  t.is(report.rows[0]!.usage!.inputTokens, 150n);
  t.is(report.rows[0]!.usage!.outputTokens, 10n);
});

test.serial(
  "Verify passes over the whole chain, then finds an edit, a deletion and a swap",
  async (t) => {
    const clean = await as(auditor).verify({});
    t.true(clean.ok, clean.problem?.message);
    t.true(clean.checkpointsChecked > 0n);
    t.is(clean.recordsChecked, clean.headSeq);

    const rowAt = async (seq: number) =>
      (
        await db.query(
          "SELECT id, time, model FROM audit.records WHERE chain_id = $1 AND seq = $2",
          [org.orgId, seq],
        )
      ).rows[0] as { id: string; time: Date; model: string };

    // An edit of one stored row (an LLM record: identity and policy events have no content).
    const withContent = Number(
      (
        await db.query(
          "SELECT min(seq) AS seq FROM audit.records WHERE chain_id = $1 AND content_sha256 <> ''",
          [org.orgId],
        )
      ).rows[0].seq,
    );
    const edited = await rowAt(withContent);
    await db.query("UPDATE audit.records SET model = 'gpt-evil' WHERE id = $1", [edited.id]);
    let v = await as(auditor).verify({});
    t.false(v.ok);
    t.like(v.problem, { code: "hash_mismatch", seq: BigInt(withContent), recordId: edited.id });
    await db.query("UPDATE audit.records SET model = $2 WHERE id = $1", [edited.id, edited.model]);
    t.true((await as(auditor).verify({})).ok, "restoring the row restores the chain");

    // An edit of stored content.
    await db.query(
      "UPDATE audit.contents SET body = replace(body, '42', '43') WHERE record_id = $1",
      [edited.id],
    );
    v = await as(auditor).verify({});
    t.like(v.problem, { code: "content_mismatch", seq: BigInt(withContent) });
    await db.query(
      "UPDATE audit.contents SET body = replace(body, '43', '42') WHERE record_id = $1",
      [edited.id],
    );

    // Two rows swapped (each takes the other's place in the chain).
    const a = await rowAt(5);
    const b = await rowAt(6);
    await db.query("UPDATE audit.records SET seq = -1 WHERE id = $1", [a.id]);
    await db.query("UPDATE audit.records SET seq = 5 WHERE id = $1", [b.id]);
    await db.query("UPDATE audit.records SET seq = 6 WHERE id = $1", [a.id]);
    v = await as(auditor).verify({});
    t.false(v.ok);
    t.is(v.problem!.seq, 5n);
    t.regex(v.problem!.code, /link_broken|hash_mismatch/);
    await db.query("UPDATE audit.records SET seq = -1 WHERE id = $1", [a.id]);
    await db.query("UPDATE audit.records SET seq = 6 WHERE id = $1", [b.id]);
    await db.query("UPDATE audit.records SET seq = 5 WHERE id = $1", [a.id]);
    t.true((await as(auditor).verify({})).ok);

    // One row deleted.
    const gone = await rowAt(8);
    const saved = (await db.query("SELECT * FROM audit.records WHERE id = $1", [gone.id])).rows[0];
    await db.query("DELETE FROM audit.records WHERE id = $1", [gone.id]);
    v = await as(auditor).verify({});
    t.like(v.problem, { code: "missing_records", seq: 8n, toSeq: 8n });
    const cols = Object.keys(saved).filter((c) => c !== "stored_at");
    await db.query(
      `INSERT INTO audit.records (${cols.join(", ")}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")})`,
      cols.map((c) => saved[c]),
    );
    t.true((await as(auditor).verify({})).ok);
  },
);

test.serial("a forged checkpoint fails on its signature", async (t) => {
  const { rows } = await db.query(
    "SELECT seq, hash FROM audit.checkpoints WHERE chain_id = $1 ORDER BY seq LIMIT 1",
    [org.orgId],
  );
  const { seq, hash } = rows[0] as { seq: string; hash: string };
  await db.query(
    "UPDATE audit.checkpoints SET hash = repeat('0', 64) WHERE chain_id = $1 AND seq = $2",
    [org.orgId, seq],
  );
  const v = await as(auditor).verify({});
  t.false(v.ok);
  t.is(v.problem!.code, "bad_signature");
  await db.query("UPDATE audit.checkpoints SET hash = $3 WHERE chain_id = $1 AND seq = $2", [
    org.orgId,
    seq,
    hash,
  ]);
  t.true((await as(auditor).verify({})).ok);
});

test.serial("after a content purge by the retention service, Verify still passes", async (t) => {
  // Every record's content so far; metadata and receipts kept.
  const purge = {
    runId: "run_content",
    orgs: [{ orgId: org.orgId, contentBefore: timestampFromMs(Date.now() + 1000) }],
    receiptKinds: ["retention.run"],
  };
  t.is(await code(as(org.adminToken).purge(purge)), Code.PermissionDenied);
  t.is(await code(asService().purge(purge)), Code.PermissionDenied, "only retention purges");
  const retention = connectAsService(AuditService, h.runtime.server.url, secret, "retention");
  const dry = await retention.purge({ ...purge, dryRun: true });
  t.is(dry.orgs.length, 1);
  t.like(dry.orgs[0], { orgId: org.orgId, metadataPurged: 0n, receiptsPurged: 0n });
  t.true(dry.orgs[0]!.contentPurged > 0n);
  const done = await retention.purge(purge);
  t.deepEqual(done, dry);
  const v = await as(auditor).verify({});
  t.true(v.ok, v.problem?.message);
  t.is(v.recordsPurged, 0n, "no position was deleted");
  const after = await as(contentAuditor).query({ includeContent: true, kinds: ["llm.response"] });
  t.true(after.records.every((r) => r.content === undefined && r.contentPurged));
});

test.serial("identity and policy changes reach the audit log through their outboxes", async (t) => {
  let kinds = new Set<string>();
  for (let i = 0; i < 100 && !(kinds.has("identity.token") && kinds.has("policy.change")); i++) {
    const page = await as(auditor).query({
      kinds: ["identity.token", "identity.principal", "policy.change"],
    });
    kinds = new Set(page.records.map((r) => r.kind));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.true(kinds.has("identity.token"), "token creation recorded");
  t.true(kinds.has("identity.principal"), "principal creation recorded");
  t.true(kinds.has("policy.change"), "the starter bundle recorded");
  const { rows } = await db.query(
    "SELECT (SELECT count(*) FROM identity.audit_outbox) + (SELECT count(*) FROM policy.audit_outbox) AS n",
  );
  t.is(Number(rows[0].n), 0, "shipped events leave the outboxes");
  t.true((await as(auditor).verify({})).ok);
});
