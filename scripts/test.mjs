#!/usr/bin/env node
// The test command (`npm test`): checks that Postgres and Redis answer, runs
// every ava test (static checks included, see test/static-checks.test.ts),
// and ends with the line CI reads: `tests: N passed, M failed`.
import { spawn } from "node:child_process";
import { connect } from "node:net";

const databaseUrl = new URL(
  process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
);
const redisUrl = new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");

const needs = [
  {
    name: "Postgres",
    host: databaseUrl.hostname,
    port: Number(databaseUrl.port || 5432),
    hint: "set DATABASE_URL, or start the local server: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
  },
  {
    name: "Redis",
    host: redisUrl.hostname,
    port: Number(redisUrl.port || 6379),
    hint: 'set REDIS_URL, or start the local server: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
  },
];

function reachable({ host, port }) {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2000 });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => (socket.destroy(), resolve(false)));
  });
}

const missing = [];
for (const need of needs) if (!(await reachable(need))) missing.push(need);
if (missing.length) {
  for (const m of missing)
    console.error(`${m.name} is not reachable at ${m.host}:${m.port}: ${m.hint}`);
  console.log(`tests: 0 passed, ${missing.length} failed`);
  process.exit(1);
}

// TAP lets us count results ourselves: ava's own summary has no passed count on failure.
const ava = spawn("npx", ["ava", "--tap", ...process.argv.slice(2)], {
  stdio: ["ignore", "pipe", "inherit"],
});
let passed = 0;
let failed = 0;
let buffer = "";
ava.stdout.on("data", (chunk) => {
  process.stdout.write(chunk);
  buffer += chunk.toString("utf8");
  const lines = buffer.split("\n");
  buffer = lines.pop() ?? "";
  for (const line of lines) {
    if (/^ok \d+/.test(line) && !/# SKIP/i.test(line)) passed++;
    else if (/^not ok \d+/.test(line) && !/# TODO/i.test(line)) failed++;
  }
});
ava.on("close", (code) => {
  if (code !== 0 && failed === 0) failed = 1; // ava failed before reporting a test (e.g. a file crashed)
  console.log(`tests: ${passed} passed, ${failed} failed`);
  process.exit(code ?? 1);
});
