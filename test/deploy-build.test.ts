import test from "ava";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, redisUrl, testServiceSecret } from "./support/env.js";
import { spawnAirlock, type AirlockProcess } from "./support/process.js";
import {
  buildInto,
  composeEnvironment,
  freePort,
  root,
  type LocalPlacement,
} from "./support/deploy.js";

// What the image runs: `npm run build`'s output, started with plain node (no
// TypeScript loader) beside production dependencies only, one service per
// process, each configured as deploy/compose/compose.yaml configures it.
test("the build output serves every service from plain node with production dependencies only", async (t) => {
  t.timeout(240_000);
  const out = await mkdtemp(join(tmpdir(), "airlock-dist-"));
  const db = await createTestDatabase();
  const started: AirlockProcess[] = [];
  t.teardown(async () => {
    await Promise.all(started.map((p) => p.stop("SIGTERM")));
    await db.drop();
    await rm(out, { recursive: true, force: true });
  });
  await buildInto(out);
  for (const sql of [
    "services/identity/migrations/001_init.sql",
    "services/policy/migrations/001_init.sql",
    "services/audit/migrations/001_init.sql",
    "services/retention/migrations/001_init.sql",
  ])
    t.is(
      await readFile(join(out, sql), "utf8"),
      await readFile(join(root, sql), "utf8"),
      `${sql} copied beside the compiled code`,
    );
  const entry = join(out, "services", "cli", "main.js");

  const names = ["identity", "policy", "audit", "proxy", "retention"];
  const placements: Record<string, LocalPlacement> = {};
  for (const name of names)
    placements[name] = {
      rpcPort: await freePort(),
      dataDir: join(out, "data", name),
      ...(name === "proxy" ? { llmPort: await freePort() } : {}),
    };
  const vars = { AIRLOCK_SERVICE_SECRET: testServiceSecret(), POSTGRES_PASSWORD: "unused" };
  for (const name of names) {
    const { env, args } = await composeEnvironment(name, vars, placements, {
      databaseUrl: db.url,
      redisUrl,
    });
    const p = await spawnAirlock(args, env, { entry, exactEnv: true });
    started.push(p);
    t.deepEqual(p.url, `http://127.0.0.1:${placements[name]!.rpcPort}`);
    const healthz = await fetch(`${p.url}/healthz`);
    t.is(healthz.status, 200, `${name} /healthz`);
    const readyz = await fetch(`${p.url}/readyz`);
    t.is(readyz.status, 200, `${name} /readyz`);
    t.like(await readyz.json(), { ready: true, checks: { postgres: "ok", redis: "ok" } });
    // The image's HEALTHCHECK script finds the port in AIRLOCK_RPC_ADDR as the container has it.
    const check = await healthcheck(`0.0.0.0:${placements[name]!.rpcPort}`, "/readyz");
    t.is(check, 0, `${name}: deploy/docker/healthcheck.mjs /readyz`);
  }
  // The proxy's LLM port answers too: an OpenAI-format call without a token is refused.
  const llm = `http://127.0.0.1:${placements.proxy!.llmPort}`;
  const refused = await fetch(`${llm}/openai/v1/models`);
  t.is(refused.status, 401);
  // No process loaded a TypeScript loader: none was there to load.
  for (const p of started) t.false(p.output.some((l) => /tsx|ERR_MODULE_NOT_FOUND/.test(l)));
  // And the healthcheck fails where nothing answers.
  t.is(await healthcheck(`0.0.0.0:${await freePort()}`, "/healthz"), 1);
});

function healthcheck(rpcAddr: string, path: string): Promise<number | null> {
  const child = spawn(process.execPath, [join(root, "deploy", "docker", "healthcheck.mjs"), path], {
    env: { AIRLOCK_RPC_ADDR: rpcAddr },
    stdio: "ignore",
  });
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}
