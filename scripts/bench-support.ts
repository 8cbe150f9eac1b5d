/** What the benchmark scripts share: timing loops, quantiles and process readings. */
import { rmSync } from "node:fs";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildInto } from "../test/support/deploy.js";
import { spawnAirlock, type AirlockProcess } from "../test/support/process.js";

/** Runs `call` `n` times one after another; the latencies in milliseconds, sorted. */
export async function timeEach(n: number, call: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await call();
    out.push(performance.now() - started);
  }
  return out.sort((a, b) => a - b);
}

/** Keeps `workers` calls in flight for `ms`; calls completed, errors and calls per second. */
export async function runFor(ms: number, workers: number, call: () => Promise<unknown>) {
  const until = performance.now() + ms;
  let calls = 0;
  let errors = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < until) {
        try {
          await call();
          calls++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { calls, errors, rps: Math.round(calls / ((performance.now() - started) / 1000)) };
}

/** The value at `quantile` of sorted latencies, in milliseconds with three decimals. */
export function quantile(sorted: number[], q: number): number {
  return Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(3));
}

/** A markdown table row: name, count, p50, p99 and mean of sorted latencies. */
export function latencyRow(name: string, sorted: number[]): string {
  const mean = (sorted.reduce((a, b) => a + b, 0) / sorted.length).toFixed(3);
  return `| ${name} | ${sorted.length} | ${quantile(sorted, 0.5)} | ${quantile(sorted, 0.99)} | ${mean} |`;
}

/** User + system CPU time of a process so far, from /proc (clock ticks of 10 ms). */
export async function cpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Resident memory of a process, in MiB. */
export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024);
}

/** CPU time so far, in ms, of each process whose command name is `comm` (e.g. "postgres"), by pid. */
export async function cpuMsOfCommand(comm: string): Promise<Map<number, number>> {
  const byPid = new Map<number, number>();
  for (const pid of (await readdir("/proc")).filter((d) => /^\d+$/.test(d))) {
    try {
      if ((await readFile(`/proc/${pid}/comm`, "utf8")).trim() === comm)
        byPid.set(+pid, await cpuMs(+pid));
    } catch {
      // The process ended while we looked.
    }
  }
  return byPid;
}

/**
 * CPU time spent between two readings of cpuMsOfCommand: a process started
 * in between counts from zero; one that ended took its time with it (a
 * plain difference of totals went negative when Postgres backends exited).
 */
export function cpuMsBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
  return total;
}

/** Idle CPU time of the whole machine so far, all cores together, in ms. */
export async function machineIdleMs(): Promise<number> {
  const fields = (await readFile("/proc/stat", "utf8")).split("\n")[0]!.trim().split(/\s+/);
  return (Number(fields[4]) + Number(fields[5])) * 10;
}

/** What `spawnAsDeployed` runs: prepared once per benchmark run. */
let deployed: Promise<{ entry: string; NODE_OPTIONS: string }> | undefined;

/**
 * `airlock serve …` as the container image runs it: `npm run build`'s
 * output beside production dependencies only (built into a temporary
 * directory, removed when this process exits), with the image's
 * NODE_OPTIONS read from deploy/docker/Dockerfile. Not the TypeScript
 * through tsx, as `npx airlock` runs it: there esbuild's helper that names
 * each function as it is made took 2-3% of the proxy's main thread at
 * concurrency 32 (a profile, 2026-11-28).
 */
export async function spawnAsDeployed(
  args: string[],
  env: Record<string, string>,
): Promise<AirlockProcess> {
  deployed ??= (async () => {
    const dockerfile = await readFile(
      new URL("../deploy/docker/Dockerfile", import.meta.url),
      "utf8",
    );
    const options = /^ENV NODE_OPTIONS="([^"]*)"$/m.exec(dockerfile);
    if (!options) throw new Error("deploy/docker/Dockerfile sets no NODE_OPTIONS");
    // BENCH_NODE_OPTIONS adds flags for one run, e.g. --require of a profiling hook
    // (NODE_OPTIONS refuses --cpu-prof and V8 tracing flags).
    const extra = process.env.BENCH_NODE_OPTIONS;
    const out = await mkdtemp(join(tmpdir(), "airlock-bench-"));
    process.once("exit", () => rmSync(out, { recursive: true, force: true }));
    await buildInto(out);
    return {
      entry: join(out, "services", "cli", "main.js"),
      NODE_OPTIONS: extra ? `${options[1]!} ${extra}` : options[1]!,
    };
  })();
  const { entry, NODE_OPTIONS } = await deployed;
  return spawnAirlock(args, { ...env, NODE_OPTIONS }, { entry });
}
