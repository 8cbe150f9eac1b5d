import test from "ava";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import { composeFile, root } from "./support/deploy.js";
import { testServiceSecret } from "./support/env.js";

const run = promisify(execFile);

/** `docker-compose -f deploy/compose/compose.yaml ARGS` with `vars` as .env would give them. */
async function compose(args: string[], vars: Record<string, string>) {
  try {
    const { stdout } = await run("docker-compose", ["-f", composeFile, ...args], {
      cwd: root,
      env: { PATH: process.env.PATH ?? "", ...vars },
    });
    return { ok: true, out: stdout };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT")
      throw new Error(
        "docker-compose is not installed: apt-get install docker-compose (.ci/run installs it)",
      );
    return { ok: false, out: e.stderr ?? e.message };
  }
}

const vars = { AIRLOCK_SERVICE_SECRET: testServiceSecret(), POSTGRES_PASSWORD: "pw" };

test("docker-compose config -q passes with the secrets .env.example asks for", async (t) => {
  const result = await compose(["config", "-q"], vars);
  t.true(result.ok, result.out);
});

test("without the service secret compose refuses to start, naming it", async (t) => {
  const result = await compose(["config", "-q"], { POSTGRES_PASSWORD: "pw" });
  t.false(result.ok);
  t.regex(result.out, /AIRLOCK_SERVICE_SECRET/);
});

test("compose publishes only the proxy's LLM port and identity's RPC port, on loopback by default", async (t) => {
  const { out } = await compose(["config"], vars);
  const resolved = parse(out) as {
    services: Record<
      string,
      {
        ports?: (string | { published: number | string; target: number; host_ip?: string })[];
        environment?: Record<string, string>;
      }
    >;
    volumes: Record<string, unknown>;
  };
  const published = Object.entries(resolved.services).flatMap(([name, s]) =>
    // docker-compose v1 prints the short form ("127.0.0.1:4000:4000"), newer ones the long.
    (s.ports ?? []).map((p) =>
      typeof p === "string"
        ? `${name} ${p.replace(/\/tcp$/, "")}`
        : `${name} ${p.host_ip}:${p.published}:${p.target}`,
    ),
  );
  t.deepEqual(published.sort(), ["identity 127.0.0.1:4001:4001", "proxy 127.0.0.1:4000:4000"]);
  t.deepEqual(Object.keys(resolved.volumes).sort(), ["audit-keys", "postgres-data", "proxy-spool"]);
  // Every Airlock service gets the same secret from .env, and the proxy spools on its volume.
  for (const name of ["identity", "policy", "audit", "proxy", "retention"])
    t.is(resolved.services[name]!.environment!.AIRLOCK_SERVICE_SECRET, vars.AIRLOCK_SERVICE_SECRET);
  t.is(resolved.services.proxy!.environment!.AIRLOCK_SPOOL_DIR, "/var/lib/airlock/spool");
  // Retention's defaults when .env leaves them out.
  t.like(resolved.services.retention!.environment, {
    AIRLOCK_RETENTION_CONTENT: "30d",
    AIRLOCK_RETENTION_METADATA: "400d",
    AIRLOCK_RETENTION_RECEIPTS: "forever",
    AIRLOCK_RETENTION_INTERVAL: "1h",
    AIRLOCK_RETENTION_TOKEN_GRACE: "7d",
  });
  // .env.example names every variable compose requires, and the optional ones (commented out).
  const example = await readFile(join(root, "deploy", "compose", ".env.example"), "utf8");
  for (const name of Object.keys(vars)) t.regex(example, new RegExp(`^${name}=$`, "m"));
  const read = (await readFile(composeFile, "utf8")).matchAll(/\$\{([A-Z0-9_]+)/g);
  for (const [, name] of read) t.regex(example, new RegExp(`^(# )?${name}=`, "m"), name);
});
