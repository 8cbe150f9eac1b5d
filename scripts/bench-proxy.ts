/**
 * What the proxy adds: the same requests straight to the fake upstream and
 * through Airlock (on the real Postgres and Redis, authentication, policy
 * and recording on), in one run on loopback. The fake upstream runs in its
 * own process with no added latency; this process is the client (undici,
 * keep-alive).
 *
 * BENCH_MODE=split (the default) runs the proxy as deployed for traffic:
 * `airlock serve proxy` in its own process (its spool and shipper included)
 * beside `airlock serve identity policy audit`; CPU and RSS are the proxy
 * process's. BENCH_MODE=all-in-one runs `airlock serve`, every service in
 * one process, so that process also stores each record in the audit log
 * (hash chain, Postgres) on the same cores. BENCH_MODE=spool-only is split
 * without AIRLOCK_AUDIT_URL on the proxy: every record is written to the
 * spool (the call waits for its request record as always) but none is
 * shipped, which tells the spool's cost from the shipping's and audit's.
 *
 * The same calls also go through a bare Node.js pass-through
 * (scripts/passthrough-proxy.ts: no authentication, policy or recording),
 * at concurrency 1 and at the high concurrency, which tells what one more
 * process and hop cost on this machine from what Airlock's own work adds.
 * In split mode the bare pass-through is timed again beside
 * scripts/cpu-load.ts burning the share of a core that audit and Postgres
 * used while the proxy was timed: what background work of that size costs
 * any proxy on the same cores.
 *
 * Each timed phase through the proxy starts once audit has every record of
 * the phases before it (the proxy's spool holds none), so that a phase at
 * concurrency 1 measures calls at concurrency 1, not the catching up after
 * a loaded warm-up: shipping and storing its own records go on during it.
 *
 * BENCH_WARMUP_SECONDS (default 5) is how long each target is called at the
 * high concurrency before each kind of call is timed.
 *
 *   npm run bench:proxy
 *   BENCH_SECONDS=10 BENCH_CONCURRENCY=32 BENCH_MODE=all-in-one npm run bench:proxy
 */
import { spawn } from "node:child_process";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { Pool } from "undici";
import { createTestDatabase, redisUrl, testServiceSecret } from "../test/support/env.js";
import { orgWithAgent } from "../test/support/org-setup.js";
import {
  cpuMs,
  cpuMsBetween,
  cpuMsOfCommand,
  quantile,
  rssMb,
  runFor,
  spawnAsDeployed,
  timeEach,
} from "./bench-support.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
const samples = Number(process.env.BENCH_SAMPLES ?? 2000);
const warmup = Number(process.env.BENCH_WARMUP_SECONDS ?? 5);

const mode = process.env.BENCH_MODE ?? "split";
const fake = await startScript("fake-upstream.ts", ["--port", "0"]);
const bare = await startScript("passthrough-proxy.ts", ["--upstream", fake.url]);
// The helpers are stopped at the end; this also stops them when the setup below fails.
process.once("exit", () => [fake, bare].forEach((p) => p.child.kill("SIGTERM")));
const db = await createTestDatabase();
const shared = {
  DATABASE_URL: db.url,
  REDIS_URL: redisUrl,
  AIRLOCK_SERVICE_SECRET: testServiceSecret(),
  AIRLOCK_OPENAI_BASE_URL: `${fake.url}/v1`,
  AIRLOCK_OPENAI_API_KEY: "sk-bench",
  AIRLOCK_ANTHROPIC_BASE_URL: fake.url,
};
if (!["split", "all-in-one", "spool-only"].includes(mode))
  throw new Error(`BENCH_MODE=${mode}: expected split, all-in-one or spool-only`);
const core =
  mode === "all-in-one"
    ? undefined
    : await spawnAsDeployed(["serve", "identity", "policy", "audit"], shared);
const server = await spawnAsDeployed(
  core ? ["serve", "proxy"] : ["serve"],
  core
    ? {
        ...shared,
        AIRLOCK_IDENTITY_URL: core.url,
        AIRLOCK_POLICY_URL: core.url,
        ...(mode === "split" && { AIRLOCK_AUDIT_URL: core.url }),
      }
    : shared,
);
for (const p of [core, server]) p?.child.stdout?.removeAllListeners("data").resume();
const proxyUrl = server.endpoints.llm!;

try {
  const { agentToken: token } = await orgWithAgent((core ?? server).url, { org: "bench" });

  const body = (stream: boolean) =>
    JSON.stringify({
      model: "gpt-4o",
      stream,
      messages: [{ role: "user", content: "Say hello." }],
      tools: [
        { type: "function", function: { name: "get_weather", parameters: { type: "object" } } },
      ],
    });
  const targets = {
    direct: {
      pool: new Pool(fake.url, { connections: concurrency }),
      path: "/v1/chat/completions",
    },
    bare: { pool: new Pool(bare.url, { connections: concurrency }), path: "/v1/chat/completions" },
    proxy: {
      pool: new Pool(new URL(proxyUrl).origin, { connections: concurrency }),
      path: "/openai/v1/chat/completions",
    },
  };
  const call = (target: keyof typeof targets, stream: boolean) => async () => {
    const { pool, path } = targets[target];
    const res = await pool.request({
      method: "POST",
      path,
      body: body(stream),
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    });
    await res.body.text();
    if (res.statusCode !== 200) throw new Error(`${target} answered ${res.statusCode}`);
  };

  const latency: string[] = [];
  const baseline: string[] = [];
  const loaded: string[] = [];
  const throughput: string[] = [];
  for (const stream of [false, true]) {
    const kind = stream ? "streaming" : "non-streaming";
    // Warm-up, loaded then one at a time, so every process is compiled and settled before anything
    // counts. A second of it was too short: the first kind timed, whichever it was, got a p99 one to
    // two ms worse than the second, through the bare pass-through as well as through Airlock.
    for (const target of ["direct", "bare", "proxy"] as const) {
      await runFor(warmup * 1000, concurrency, call(target, stream));
      await timeEach(1000, call(target, stream));
    }
    // The controls too are timed once audit has stored the warm-up's records, not beside that work.
    await shipped();
    const direct = await timeEach(samples, call("direct", stream));
    const bared = await timeEach(samples, call("bare", stream));
    await shipped();
    const recordingAtOne = mode === "split" ? await recordingCpu(core!.child.pid!) : undefined;
    const started = performance.now();
    const [proxied, cpuAtOne] = await withCpuOf(server.child.pid!, () =>
      timeEach(samples, call("proxy", stream)),
    );
    const elapsed = performance.now() - started;
    const cpuPerCallAtOne = cpuAtOne / samples;
    const added = (q: number, through: number[]) =>
      (quantile(through, q) - quantile(direct, q)).toFixed(3);
    if (recordingAtOne) {
      const share = (await recordingCpuMsSince(recordingAtOne)) / elapsed;
      await shipped();
      const load = await startScript(
        "cpu-load.ts",
        ["--share", Math.min(share, 1).toFixed(3)],
        /cpu-load running/,
      );
      const beside = await timeEach(samples, call("bare", stream)).finally(() =>
        load.child.kill("SIGTERM"),
      );
      loaded.push(
        `| ${kind} | ${(share * 100).toFixed(0)}% | ${added(0.5, beside)} | ${added(0.99, beside)} |`,
      );
    }
    latency.push(
      `| ${kind} | ${quantile(direct, 0.5)} | ${quantile(proxied, 0.5)} | ${added(0.5, proxied)} | ${quantile(direct, 0.99)} | ${quantile(proxied, 0.99)} | ${added(0.99, proxied)} | ${(cpuPerCallAtOne * 1000).toFixed(0)} µs |`,
    );
    baseline.push(`| ${kind} | ${added(0.5, bared)} | ${added(0.99, bared)} |`);
    const d = await runFor(seconds * 1000, concurrency, call("direct", stream));
    const [b, bareCpu] = await withCpuOf(bare.child.pid!, () =>
      runFor(seconds * 1000, concurrency, call("bare", stream)),
    );
    const bareCpuPerCall = bareCpu / b.calls;
    await shipped();
    const [p, proxyCpu] = await withCpuOf(server.child.pid!, () =>
      runFor(seconds * 1000, concurrency, call("proxy", stream)),
    );
    const cpuPerCall = proxyCpu / p.calls;
    throughput.push(
      `| ${kind} | ${concurrency} | ${d.rps} | ${b.rps} | ${(bareCpuPerCall * 1000).toFixed(0)} µs | ${p.rps} | ${p.errors} | ${(cpuPerCall * 1000).toFixed(0)} µs | ${await rssMb(server.child.pid!)} MiB |`,
    );
  }
  console.log(
    `Proxy overhead on loopback, fake upstream with no latency; ${cpus().length} CPUs (${cpus()[0]?.model.trim()}); client, fake upstream and airlock on the same machine; mode ${mode}`,
  );
  console.log("");
  console.log("Concurrency 1 (ms):");
  console.log("");
  console.log(
    "| call | direct p50 | proxy p50 | added p50 | direct p99 | proxy p99 | added p99 | airlock CPU per call |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  for (const line of latency) console.log(line);
  console.log("");
  console.log("What a bare Node.js pass-through adds at concurrency 1, for scale (ms):");
  console.log("");
  console.log("| call | added p50 | added p99 |");
  console.log("|---|---|---|");
  for (const line of baseline) console.log(line);
  console.log("");
  if (loaded.length > 0) {
    console.log(
      "The same bare pass-through beside a process burning, in 50 bursts a second, the share of a core that audit and Postgres used while the proxy was timed (ms):",
    );
    console.log("");
    console.log("| call | share of a core | added p50 | added p99 |");
    console.log("|---|---|---|---|");
    for (const line of loaded) console.log(line);
    console.log("");
  }
  console.log(`Throughput for ${seconds}s:`);
  console.log("");
  console.log(
    "| call | concurrency | direct req/s | bare pass-through req/s | its CPU per call | proxy req/s | proxy errors | airlock CPU per call | airlock RSS |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const line of throughput) console.log(line);
} finally {
  await server.stop();
  await core?.stop();
  fake.child.kill("SIGTERM");
  bare.child.kill("SIGTERM");
  await db.drop();
}

/** Waits until the proxy's spool holds no record audit lacks (in spool-only mode none is ever shipped). */
async function shipped(): Promise<void> {
  if (mode === "spool-only") return;
  const until = performance.now() + 120_000;
  for (;;) {
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const pending = /^airlock_audit_spool_pending_records (\d+)$/m.exec(metrics)?.[1];
    if (pending === undefined) throw new Error("the proxy's /metrics has no spool gauge");
    if (pending === "0") return;
    if (performance.now() > until) throw new Error(`${pending} records still not shipped`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs `phase`; what it returns, and the CPU time (ms) process `pid` used meanwhile. */
async function withCpuOf<T>(pid: number, phase: () => Promise<T>): Promise<[T, number]> {
  const before = await cpuMs(pid);
  const result = await phase();
  return [result, (await cpuMs(pid)) - before];
}

/**
 * A reading of the CPU time of what stores the records in split mode: the
 * process serving audit (with identity and policy, idle at concurrency 1
 * once their answers are cached) and every Postgres process.
 */
async function recordingCpu(auditPid: number) {
  return { auditPid, audit: await cpuMs(auditPid), postgres: await cpuMsOfCommand("postgres") };
}

async function recordingCpuMsSince(before: Awaited<ReturnType<typeof recordingCpu>>) {
  const audit = (await cpuMs(before.auditPid)) - before.audit;
  return audit + cpuMsBetween(before.postgres, await cpuMsOfCommand("postgres"));
}

/** Runs one of the scripts beside this one in its own process, until it says where it listens (or `ready`). */
async function startScript(name: string, args: string[], ready = /listening on (http:\/\/\S+)/) {
  const script = fileURLToPath(new URL(`./${name}`, import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      const match = ready.exec(chunk.toString());
      if (match) resolve(match[1] ?? "");
    });
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  return { child, url };
}
