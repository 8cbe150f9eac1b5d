import { execFile } from "node:child_process";
import { readFile, symlink, mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parse } from "yaml";

/** The repository root. */
export const root = fileURLToPath(new URL("../..", import.meta.url));
export const composeFile = join(root, "deploy", "compose", "compose.yaml");
export const dockerfile = join(root, "deploy", "docker", "Dockerfile");
const run = promisify(execFile);

/** A compose service as far as the tests read it. */
export interface ComposeService {
  command?: string[];
  environment?: Record<string, string | number | boolean | null>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
}

/** deploy/compose/compose.yaml, parsed as compose parses it (YAML merge keys on). */
export async function readCompose(): Promise<{ services: Record<string, ComposeService> }> {
  return parse(await readFile(composeFile, "utf8"), { merge: true }) as {
    services: Record<string, ComposeService>;
  };
}

/**
 * Compose's variable substitution: `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?error}`, `${VAR?error}` and `$$`, from `vars` (what `.env` holds).
 */
export function substitute(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g,
    (whole, name: string | undefined, colon: string, op: string, arg: string) => {
      if (whole === "$$") return "$";
      const value = vars[name!];
      const missing = value === undefined || (colon === ":" && value === "");
      if (!missing) return value;
      if (op === "?") throw new Error(`compose: ${name} is required: ${arg}`);
      return op === "-" ? arg : "";
    },
  );
}

/** The ENV of the Dockerfile's runtime stage: what every container starts with. */
export async function imageEnv(): Promise<Record<string, string>> {
  const text = (await readFile(dockerfile, "utf8")).replace(/\\\n/g, " ");
  const runtime = text.split(/^FROM .* AS runtime$/m)[1];
  if (runtime === undefined) throw new Error("Dockerfile: no `FROM … AS runtime` stage");
  const env: Record<string, string> = {};
  for (const line of runtime.split("\n")) {
    const m = /^ENV\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const pair of m[1]!.trim().split(/\s+/)) {
      const [k, ...v] = pair.split("=");
      env[k!] = v.join("=");
    }
  }
  return env;
}

/** Where one compose service runs on this machine instead of in its container. */
export interface LocalPlacement {
  /** Port for the container's 4001 (RPC) and, for the proxy, 4000 (LLM). */
  rpcPort: number;
  llmPort?: number;
  /** Stands for the container's /var/lib/airlock. */
  dataDir: string;
}

/**
 * A service's environment exactly as compose would give its container (the
 * image's ENV, then compose's `environment` with `.env`'s `vars` substituted),
 * with only the addresses moved to this machine: a URL naming a compose
 * service points at that service's local port, Postgres and Redis at the test
 * servers, listen addresses at loopback, /var/lib/airlock at a temp dir.
 */
export async function composeEnvironment(
  service: string,
  vars: Readonly<Record<string, string>>,
  placements: Readonly<Record<string, LocalPlacement>>,
  backing: { databaseUrl: string; redisUrl: string },
): Promise<{ env: Record<string, string>; args: string[] }> {
  const compose = await readCompose();
  const def = compose.services[service];
  if (!def) throw new Error(`compose.yaml has no service ${service}`);
  const here = placements[service];
  if (!here) throw new Error(`no local placement for ${service}`);
  const env: Record<string, string> = { ...(await imageEnv()) };
  for (const [name, value] of Object.entries(def.environment ?? {}))
    env[name] = substitute(String(value ?? ""), vars);
  for (const [name, value] of Object.entries(env)) env[name] = localize(value);
  return { env, args: def.command ?? ["serve"] };

  function localize(value: string): string {
    const listen = /^(0\.0\.0\.0|\[::\]):(\d+)$/.exec(value);
    // A service that does not listen on that port (the image sets both addresses) gets port 0.
    if (listen) return `127.0.0.1:${port(here!, Number(listen[2])) ?? 0}`;
    if (value.startsWith("/var/lib/airlock"))
      return join(here!.dataDir, relative("/var/lib/airlock", value));
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return value;
    }
    if (url.protocol.startsWith("postgres")) {
      if (url.hostname !== "postgres") throw new Error(`${value}: not the compose Postgres`);
      return backing.databaseUrl;
    }
    if (url.protocol.startsWith("redis")) {
      if (url.hostname !== "redis") throw new Error(`${value}: not the compose Redis`);
      return backing.redisUrl;
    }
    const peer = placements[url.hostname];
    if (!compose.services[url.hostname]) return value;
    if (!peer) throw new Error(`${value}: ${url.hostname} has no local placement`);
    url.hostname = "127.0.0.1";
    const local = port(peer, Number(url.port || 80));
    if (local === undefined) throw new Error(`${value}: ${url.hostname} has no local port for it`);
    url.port = String(local);
    return url.toString().replace(/\/$/, "");
  }
}

function port(p: LocalPlacement, containerPort: number): number | undefined {
  if (containerPort === 4001) return p.rpcPort;
  if (containerPort === 4000) return p.llmPort;
  return undefined;
}

/** A port free on loopback now (the kernel's pick, released at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * `npm run build` into `out`, with a node_modules beside it that holds the
 * production dependencies only (links to the installed ones), as the image's
 * prod-deps stage does: anything the compiled code needs from a development
 * dependency, tsx included, then fails to load.
 */
export async function buildInto(out: string): Promise<void> {
  await run(process.execPath, [join(root, "scripts", "build.mjs"), out], {
    cwd: root,
    maxBuffer: 16 * 1024 * 1024,
  });
  const { stdout } = await run("npm", ["ls", "--omit=dev", "--all", "--parseable"], {
    cwd: root,
    maxBuffer: 64 * 1024 * 1024,
  });
  const top = join(root, "node_modules");
  for (const path of stdout.split("\n").filter(Boolean)) {
    const rel = relative(top, path);
    // Only top-level packages: nested ones come along inside their parent.
    if (rel.startsWith("..") || rel === "" || rel.includes("node_modules")) continue;
    if (rel.split("/").length !== (rel.startsWith("@") ? 2 : 1)) continue;
    const link = join(out, "node_modules", rel);
    await mkdir(dirname(link), { recursive: true });
    await symlink(path, link, "dir");
  }
}
