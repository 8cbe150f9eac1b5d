/**
 * Audit ingest and query, against `airlock serve identity policy audit` in
 * its own process on the real Postgres:
 * - sustained Append: shippers send batches of records with ~2 KB of
 *   content each (a prompt and an answer), as the proxy's spool shipper does,
 *   with a service credential over loopback; records/s;
 * - the log is then filled to BENCH_AUDIT_RECORDS (default 1,000,000)
 *   records spread over 30 days, 50 principals, 5 models and 20,000 sessions;
 * - Query as an auditor over loopback: a filtered first page (by principal,
 *   model, session, kind, tool, a time range), p50/p95.
 *
 *   npm run bench:audit
 *
 * The benchmark process stands in for proxies on other hosts, so it must take
 * little of the two cores it shares with audit and Postgres: each day's batch
 * is encoded once, and every send copies it and writes fresh record ids into
 * the copy (a record id is what makes it new; a UUID version 7, as the
 * proxy makes them), sent as a Connect unary call
 * over one HTTP/2 connection.
 *
 * Environment: BENCH_AUDIT_RECORDS, BENCH_SECONDS (ingest phase, default 20),
 * BENCH_CONCURRENCY (shippers, default 4), BENCH_BATCH (records per Append,
 * default 500), BENCH_SAMPLES (queries per filter, default 200),
 * BENCH_AUDIT_REPLICAS (audit processes on the same database, default 1),
 * BENCH_AUDIT_ORGS (orgs, so chains, the sustained Append is spread over,
 * default 1): shipper k appends to org k % orgs through audit process
 * k % replicas.
 */
import http2 from "node:http2";
import { availableParallelism } from "node:os";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import pg from "pg";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  AppendRequestSchema,
  AppendResponseSchema,
  AuditService,
  RecordSchema,
  UsageSchema,
} from "../gen/airlock/audit/v1/audit_pb.js";
import { IdentityService, PrincipalKind } from "../gen/airlock/identity/v1/identity_pb.js";
import { PolicyService } from "../gen/airlock/policy/v1/policy_pb.js";
import { starterBundle } from "../services/cli/policy-commands.js";
import { uuidv7 } from "../services/kit/ids.js";
import { ServiceCredentials } from "../services/kit/service-credentials.js";
import { connectTo } from "../test/support/clients.js";
import { createTestDatabase, redisUrl, testServiceSecret } from "../test/support/env.js";
import {
  cpuMs,
  cpuMsBetween,
  cpuMsOfCommand,
  machineIdleMs,
  quantile,
  rssMb,
  spawnAsDeployed,
  timeEach,
} from "./bench-support.js";

const total = Number(process.env.BENCH_AUDIT_RECORDS ?? 1_000_000);
const seconds = Number(process.env.BENCH_SECONDS ?? 20);
const shippers = Number(process.env.BENCH_CONCURRENCY ?? 4);
const batch = Number(process.env.BENCH_BATCH ?? 500);
const samples = Number(process.env.BENCH_SAMPLES ?? 200);
const replicas = Number(process.env.BENCH_AUDIT_REPLICAS ?? 1);
const orgs = Number(process.env.BENCH_AUDIT_ORGS ?? 1);
const days = 30;
const models = ["gpt-4.1-mini", "gpt-4o", "o4-mini", "claude-sonnet-4", "claude-haiku-4"];
const tools = ["shell", "read_file", "write_file", "search", "git"];

// About 2 KB of content per record: a short prompt conversation and an answer.
const prompt = "Refactor the payment retry loop so that it backs off exponentially. ".repeat(14);
const answer = "Here is the change: wrap the call in a loop with a capped delay. ".repeat(14);

let made = 0;
function record(orgId: string, timeMs: number) {
  const n = made++;
  return create(RecordSchema, {
    id: `${uuidv7()}.response`,
    // A few other events among the LLM records, as identity and policy write them.
    kind: n % 1000 === 0 ? "identity.token" : n % 2 === 0 ? "llm.request" : "llm.response",
    time: timestampFromMs(timeMs),
    orgId,
    actor: `agt_bench${n % 50}`,
    actorKind: "agent",
    action: "invoke",
    status: n % 97 === 0 ? "error" : "ok",
    sessionId: `ses_${n % 20_000}`,
    interceptionId: uuidv7(),
    workspace: `ws${n % 7}`,
    repositories: [`github.com/acme/repo${n % 40}`],
    userAgent: "claude-cli/2.0",
    provider: n % 5 < 3 ? "openai" : "anthropic",
    model: models[n % 5]!,
    toolNames: [tools[n % 5]!],
    usage: create(UsageSchema, { inputTokens: 1200n, outputTokens: 300n, cacheReadTokens: 800n }),
    latencyMs: 900n,
    attributes: { httpStatus: 200, stream: true, attempts: 1 },
    contentJson: Buffer.from(
      JSON.stringify({
        body: { model: models[n % 5]!, messages: [{ role: "user", content: prompt }] },
        text: answer,
      }),
    ),
  });
}

const db = await createTestDatabase();
const secret = testServiceSecret();
const server = await spawnAsDeployed(["serve", "identity", "policy", "audit"], {
  DATABASE_URL: db.url,
  REDIS_URL: redisUrl,
  AIRLOCK_SERVICE_SECRET: secret,
  AIRLOCK_AUDIT_PARTITION_DAYS_AHEAD: "1",
});
server.child.stdout?.removeAllListeners("data").resume();
// More audit replicas, as a deployment scales audit out; they find identity and policy in the first process.
const extra = await Promise.all(
  Array.from({ length: replicas - 1 }, () =>
    spawnAsDeployed(["serve", "audit"], {
      DATABASE_URL: db.url,
      REDIS_URL: redisUrl,
      AIRLOCK_SERVICE_SECRET: secret,
      AIRLOCK_AUDIT_PARTITION_DAYS_AHEAD: "1",
      AIRLOCK_IDENTITY_URL: server.url,
      AIRLOCK_POLICY_URL: server.url,
    }),
  ),
);
for (const e of extra) e.child.stdout?.removeAllListeners("data").resume();
try {
  const boot = await connectTo(IdentityService, server.url).bootstrap({
    orgName: "bench",
    adminEmail: "bench@bench.test",
  });
  const orgId = boot.org!.id;
  await connectTo(PolicyService, server.url, boot.token).applyBundle({
    orgId,
    bundle: starterBundle(),
  });
  const admin = connectTo(IdentityService, server.url, boot.token);
  const auditorId = (
    await admin.createPrincipal({
      kind: PrincipalKind.SERVICE_ACCOUNT,
      displayName: "auditor",
      roles: ["auditor"],
    })
  ).principal!.id;
  const auditorToken = (await admin.createToken({ principalId: auditorId })).token;
  const credentials = new ServiceCredentials(secret, "proxy");
  const now = Date.now();
  // A batch holds consecutive records (one spool segment), `daysAgo` days old.
  const template = (org: string, daysAgo: number) => {
    const records = Array.from({ length: batch }, (_, i) =>
      record(org, now - daysAgo * 86_400_000 - i * 1000),
    );
    const bytes = Buffer.from(
      toBinary(AppendRequestSchema, create(AppendRequestSchema, { records })),
    );
    let at = 0;
    const idOffsets = records.map((r) => (at = bytes.indexOf(r.id, at)));
    return { bytes, idOffsets };
  };
  // Live traffic is about now, so sustained ingest appends to today's partition; the
  // fill spreads batches over the days, for queries over a month.
  // The extra orgs (BENCH_AUDIT_ORGS) only take appends; queries read the first.
  const orgIds = [orgId, ...Array.from({ length: orgs - 1 }, (_, i) => `org_bench${i + 1}`)];
  const live = orgIds.map((org) => Array.from({ length: days }, () => template(org, 0)));
  const spread = [Array.from({ length: days }, (_, day) => template(orgId, day))];
  let templates = spread;
  const sessions = [server, ...extra].map((p) => http2.connect(p.url));
  const appendPath = `/${AuditService.typeName}/${AuditService.method.append.name}`;
  let sent = 0;
  /** Sends shipper k's next batch with fresh ids; resolves with the records stored. */
  const sendBatch = (k = 0) => {
    const own = templates[k % templates.length]!;
    const { bytes, idOffsets } = own[(sent / batch) % days]!;
    sent += batch;
    const body = Buffer.from(bytes);
    for (const at of idOffsets) body.write(uuidv7(), at, "latin1");
    return new Promise<number>((resolve, reject) => {
      const call = sessions[k % sessions.length]!.request({
        ":method": "POST",
        ":path": appendPath,
        "content-type": "application/proto",
        "connect-protocol-version": "1",
        authorization: `Bearer ${credentials.issue("audit")}`,
      });
      const chunks: Buffer[] = [];
      let status = 0;
      call.on("response", (headers) => (status = Number(headers[":status"])));
      call.on("data", (chunk: Buffer) => chunks.push(chunk));
      call.on("error", reject);
      call.on("end", () => {
        const answer = Buffer.concat(chunks);
        if (status !== 200) reject(new Error(`Append: HTTP ${status}: ${answer.toString()}`));
        else resolve(fromBinary(AppendResponseSchema, answer).stored);
      });
      call.end(body);
    });
  };

  // Warm-up: one batch per day creates the days' partitions (as upkeep does ahead of time).
  for (let i = 0; i < days; i++) await sendBatch();
  templates = live;

  const auditPids = [server, ...extra].map((p) => p.child.pid!);
  const auditCpu = async () => (await Promise.all(auditPids.map(cpuMs))).reduce((a, b) => a + b);
  const before = {
    audit: await auditCpu(),
    postgres: await cpuMsOfCommand("postgres"),
    bench: process.cpuUsage(),
    idle: await machineIdleMs(),
  };
  const started = performance.now();
  const until = started + seconds * 1000;
  let stored = 0;
  await Promise.all(
    Array.from({ length: shippers }, async (_, k) => {
      while (performance.now() < until) {
        // Not `stored += await …`: that reads `stored` before the await and loses the other shippers' counts.
        const n = await sendBatch(k);
        stored += n;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const share = (ms: number) => `${Math.round(ms / elapsed / 10)}%`;
  const benchUsage = process.cpuUsage(before.bench);
  const cpu = {
    audit: share((await auditCpu()) - before.audit),
    postgres: share(cpuMsBetween(before.postgres, await cpuMsOfCommand("postgres"))),
    bench: share((benchUsage.user + benchUsage.system) / 1000),
    idle: share((await machineIdleMs()) - before.idle),
  };
  const ingest = Math.round(stored / elapsed);

  // Fill to the total, as fast as it goes.
  templates = spread;
  const fillStarted = performance.now();
  const sentBefore = sent;
  await Promise.all(
    Array.from({ length: shippers }, async () => {
      while (sent < total) await sendBatch();
    }),
  );
  const fillRate = Math.round((sent - sentBefore) / ((performance.now() - fillStarted) / 1000));
  for (const s of sessions) s.close();
  const pgClient = new pg.Client({ connectionString: db.url });
  await pgClient.connect();
  const count = Number(
    (await pgClient.query<{ n: string }>("SELECT count(*) AS n FROM audit.records")).rows[0]!.n,
  );
  // What autovacuum does as a day's partition fills; the fill above is too fast for it to keep up.
  await pgClient.query("ANALYZE audit.records");
  await pgClient.end();

  const asAuditor = connectTo(AuditService, server.url, auditorToken);
  await asAuditor.query({});
  const filters: [string, Parameters<typeof asAuditor.query>[0]][] = [
    ["newest first, no filter", {}],
    ["by principal", { actor: "agt_bench7" }],
    ["by model", { model: "o4-mini" }],
    ["by session", { sessionId: "ses_4242" }],
    ["by kind", { kinds: ["llm.response"] }],
    ["by kind (rare: identity.token)", { kinds: ["identity.token"] }],
    ["by tool", { toolName: "git" }],
    ["by status (rare: error)", { status: "error" }],
    ["by repository", { repository: "github.com/acme/repo7" }],
    [
      "principal + time range (a day, 10 days ago)",
      {
        actor: "agt_bench3",
        since: timestampFromMs(now - 10 * 86_400_000),
        until: timestampFromMs(now - 9 * 86_400_000),
      },
    ],
  ];
  const lines = [`| filter (first page of 100) | samples | p50 ms | p95 ms |`, `|---|---|---|---|`];
  for (const [name, filter] of filters) {
    const sorted = await timeEach(samples, () => asAuditor.query({ ...filter, pageSize: 100 }));
    lines.push(
      `| ${name} | ${sorted.length} | ${quantile(sorted, 0.5)} | ${quantile(sorted, 0.95)} |`,
    );
  }
  console.log(`\nAudit benchmark, ${new Date().toISOString()}`);
  console.log(
    `\nAppend, ${shippers} shippers x batches of ${batch} records (~2 KB content each), ${elapsed.toFixed(1)} s: ` +
      `${ingest} records/s sustained (${replicas} audit process${replicas > 1 ? "es" : ""}, ${orgs} org${orgs > 1 ? "s" : ""})\n` +
      `CPU, in % of one core: audit ${cpu.audit}, Postgres ${cpu.postgres}, this benchmark ${cpu.bench}, idle ${cpu.idle} (of ${availableParallelism() * 100}%); ` +
      `audit RSS ${await rssMb(server.child.pid!)} MiB`,
  );
  if (sent > sentBefore) console.log(`Fill to ${count} stored records: ${fillRate} records/s`);
  console.log(
    `\nQuery over ${count} records (${days} daily partitions), as an auditor over loopback:\n`,
  );
  console.log(lines.join("\n"));
} finally {
  await server.stop();
  for (const e of extra) await e.stop();
  if (process.env.BENCH_KEEP_DB) console.log(`kept ${db.url}`);
  else await db.drop();
}
