import test, { type ExecutionContext } from "ava";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer, connect, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { startFakeUpstream, type FakeUpstream } from "../scripts/fake-upstream.js";
import type { LlmRequestRecord } from "../services/proxy/records.js";
import { createTestDatabase, redisUrl, testServiceSecret } from "./support/env.js";
import { orgWithAgent } from "./support/org-setup.js";
import { spawnAirlock, type AirlockProcess } from "./support/process.js";
import { auditedRecords, readContentRule, type AuditReader } from "./support/records.js";

// Acceptance for the proxy's audit path: with audit down, Postgres cut off,
// or the proxy killed, every call still ends up with exactly one request and
// one response record in the audit log. Each service runs in its own process.

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let fake: FakeUpstream;
let core: AirlockProcess;
let org: Awaited<ReturnType<typeof orgWithAgent>>;
const processes: AirlockProcess[] = [];
const dirs: string[] = [];
const env = {
  REDIS_URL: redisUrl,
  AIRLOCK_SERVICE_SECRET: testServiceSecret(),
  AIRLOCK_SHUTDOWN_GRACE: "1s",
};

test.before(async () => {
  db = await createTestDatabase();
  fake = await startFakeUpstream();
  core = await spawnAirlock(["serve", "identity", "policy"], { ...env, DATABASE_URL: db.url });
  processes.push(core);
  org = await orgWithAgent(core.url, { org: "spooled", extraRules: readContentRule });
});
test.after.always(async () => {
  await Promise.all(processes.map((p) => p.stop("SIGKILL")));
  await fake?.close();
  await db?.drop();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `airlock-${name}-`));
  dirs.push(dir);
  return dir;
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The audit service alone, on `port`, keeping its signing key in `dataDir` across restarts. */
async function startAudit(port: number, dataDir: string, databaseUrl = db.url) {
  const audit = await spawnAirlock(["serve", "audit"], {
    ...env,
    DATABASE_URL: databaseUrl,
    AIRLOCK_RPC_ADDR: `127.0.0.1:${port}`,
    AIRLOCK_IDENTITY_URL: core.url,
    AIRLOCK_POLICY_URL: core.url,
    AIRLOCK_DATA_DIR: dataDir,
  });
  processes.push(audit);
  return audit;
}

/** The proxy alone, shipping to audit at `port` (up or not). */
async function startProxy(port: number, extra: Record<string, string>) {
  const proxy = await spawnAirlock(["serve", "proxy"], {
    ...env,
    DATABASE_URL: db.url,
    AIRLOCK_IDENTITY_URL: core.url,
    AIRLOCK_POLICY_URL: core.url,
    AIRLOCK_AUDIT_URL: `http://127.0.0.1:${port}`,
    AIRLOCK_OPENAI_BASE_URL: `${fake.url}/v1`,
    ...extra,
  });
  processes.push(proxy);
  const { endpoints } = proxy;
  const openai = new OpenAI({
    apiKey: org.agentToken,
    baseURL: `${endpoints.llm}/openai/v1`,
    maxRetries: 0,
  });
  return { proxy, openai };
}

/** Makes `count` calls at once, each with a prompt naming a marker of its own; returns the markers. */
async function calls(openai: OpenAI, count: number): Promise<string[]> {
  const markers = Array.from({ length: count }, () => `(call ${randomBytes(6).toString("hex")})`);
  await Promise.all(
    markers.map(async (marker) => {
      const answer = await openai.chat.completions.create({
        model: "gpt-4o",
        messages: [{ role: "user", content: `Say hello ${marker}` }],
      });
      if (answer.choices[0]!.message.content !== "Hello from the fake upstream.")
        throw new Error("unexpected answer");
    }),
  );
  return markers;
}

/** Spooled bytes on disk, as the proxy process left them. */
async function spooled(dir: string): Promise<string> {
  const names = (await readdir(dir).catch(() => [])).filter((n) => n.startsWith("segment-"));
  return (await Promise.all(names.map((n) => readFile(join(dir, n), "utf8")))).join("");
}

async function until(
  what: string | (() => string),
  condition: () => Promise<boolean>,
  ms = 30_000,
) {
  const started = performance.now();
  while (!(await condition())) {
    if (performance.now() - started > ms)
      throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until audit at `auditUrl` holds records of every marked call, then checks: one request and one response each. */
async function expectExactlyOnce(t: ExecutionContext, auditUrl: string, markers: string[]) {
  const reader: AuditReader = { url: auditUrl, token: org.adminToken };
  let failure: unknown;
  const byMarker = (records: Awaited<ReturnType<typeof auditedRecords>>, marker: string) =>
    records.filter(
      (r): r is LlmRequestRecord =>
        r.kind === "llm.request" && JSON.stringify(r.content.body).includes(marker),
    );
  let records: Awaited<ReturnType<typeof auditedRecords>> = [];
  let missing: string[] = [];
  await until(
    () => `every record in audit; missing: ${missing.join(", ")} (last error: ${String(failure)})`,
    async () => {
      records = await auditedRecords(reader).catch((err: unknown) => ((failure = err), []));
      missing = markers.flatMap((m) => {
        const request = byMarker(records, m)[0];
        if (!request) return [`${m} request`];
        return records.some((r) => r.kind === "llm.response" && r.id === request.id)
          ? []
          : [`${m} response`];
      });
      return missing.length === 0;
    },
  );
  for (const marker of markers) {
    const requests = byMarker(records, marker);
    t.is(requests.length, 1, `one request record for ${marker}`);
    const responses = records.filter((r) => r.kind === "llm.response" && r.id === requests[0]!.id);
    t.is(responses.length, 1, `one response record for ${marker}`);
    t.like(responses[0], { status: "ok", principalId: org.agentId });
  }
}

/** A TCP forwarder to the local Postgres that can be cut off (every connection dropped, new ones refused) and restored. */
async function postgresForwarder() {
  const target = new URL(db.url);
  const sockets = new Set<Socket>();
  let cut = false;
  const server = createServer((client) => {
    if (cut) return void client.destroy();
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(a);
      a.pipe(b);
      a.on("error", () => b.destroy());
      a.on("close", () => (sockets.delete(a), b.destroy()));
    }
  }).listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const url = new URL(db.url);
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.toString(),
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      cut = false;
    },
    close() {
      // server.close waits for open connections: drop them first.
      this.cut();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The proxy process's metric `name`, summed over its labels. */
async function metric(proxy: AirlockProcess, name: string): Promise<number> {
  const text = await (await fetch(`${proxy.url}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(name))
    .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
}

test.serial(
  "audit stopped while calls go through: the calls succeed, their records wait in the spool, and arrive once audit is back",
  async (t) => {
    t.timeout(180_000);
    const port = await freePort();
    const auditDir = await tempDir("audit");
    const proxyDir = await tempDir("proxy");
    let audit = await startAudit(port, auditDir);
    const { openai } = await startProxy(port, { AIRLOCK_DATA_DIR: proxyDir });
    const before = await calls(openai, 3);
    // Killed mid-stream of calls: some Appends may be cut in the middle.
    const [during] = await Promise.all([calls(openai, 4), audit.stop("SIGKILL")]);
    const down = await calls(openai, 5);
    const spool = await spooled(join(proxyDir, "spool"));
    t.true(
      down.every((m) => spool.includes(m)),
      "the records of calls made while audit is down are in the spool",
    );
    audit = await startAudit(port, auditDir);
    await expectExactlyOnce(t, audit.url, [...before, ...during, ...down]);
    await until("the spool to empty", async () => (await spooled(join(proxyDir, "spool"))) === "");
  },
);

test.serial(
  "Postgres unreachable for audit while calls go through: Appends fail, and every record arrives once it is back",
  async (t) => {
    t.timeout(180_000);
    const forwarder = await postgresForwarder();
    t.teardown(() => forwarder.close());
    const port = await freePort();
    const audit = await startAudit(port, await tempDir("audit"), forwarder.url);
    const { proxy, openai } = await startProxy(port, { AIRLOCK_DATA_DIR: await tempDir("proxy") });
    const before = await calls(openai, 2);
    forwarder.cut();
    const failures = await metric(proxy, "airlock_audit_ship_failures_total");
    const cut = await calls(openai, 5);
    await until(
      "Appends to fail",
      async () => (await metric(proxy, "airlock_audit_ship_failures_total")) > failures,
    );
    t.true((await metric(proxy, "airlock_audit_spool_pending_records")) >= 10);
    forwarder.restore();
    await expectExactlyOnce(t, audit.url, [...before, ...cut]);
  },
);

test.serial(
  "a proxy killed with SIGKILL ships what was in its spool when it is started again",
  async (t) => {
    t.timeout(180_000);
    const port = await freePort();
    const spoolDir = join(await tempDir("proxy-spool"), "spool");
    const first = await startProxy(port, { AIRLOCK_SPOOL_DIR: spoolDir });
    const killed = await calls(first.openai, 6);
    const lines = async () => (await spooled(spoolDir)).split("\n").filter(Boolean).length;
    t.log(`${await lines()} records spooled when the last answer arrived`);
    // A response record is written just after its answer's last byte left: let the last ones land.
    await until("both records of every call in the spool", async () => (await lines()) === 12);
    await first.proxy.stop("SIGKILL");
    const audit = await startAudit(port, await tempDir("audit"));
    await startProxy(port, { AIRLOCK_SPOOL_DIR: spoolDir });
    await expectExactlyOnce(t, audit.url, killed);
    await until("the spool to empty", async () => (await spooled(spoolDir)) === "");
  },
);
