import test from "ava";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

// `npm test` is also the project's check: formatting, lint, types, the proto
// contract and generated code are tests like the others, so CI runs one command.
const root = fileURLToPath(new URL("..", import.meta.url));
const run = promisify(execFile);
const bin = (name: string) => join(root, "node_modules", ".bin", name);

async function passes(
  t: { timeout: (ms: number) => void },
  command: string,
  args: string[],
): Promise<string> {
  t.timeout(300_000);
  try {
    await run(bin(command), args, { cwd: root, maxBuffer: 16 * 1024 * 1024 });
    return "";
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return `${e.stdout ?? ""}${e.stderr ?? ""}` || e.message;
  }
}

test.serial("TypeScript type-checks in strict mode", async (t) => {
  t.is(await passes(t, "tsc", ["-p", "."]), "");
});

test.serial("ESLint reports nothing", async (t) => {
  t.is(await passes(t, "eslint", ["."]), "");
});

test.serial("Prettier formatting holds", async (t) => {
  t.is(await passes(t, "prettier", ["--check", "--log-level", "warn", "."]), "");
});

test.serial("buf lint passes", async (t) => {
  t.is(await passes(t, "buf", ["lint"]), "");
});

test.serial("gen/ is exactly what buf generate writes", async (t) => {
  const out = await mkdtemp(join(tmpdir(), "airlock-gen-"));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  t.is(await passes(t, "buf", ["generate", "-o", out]), "");
  const fresh = await files(join(out, "gen"));
  const committed = await files(join(root, "gen"));
  t.deepEqual([...committed.keys()].sort(), [...fresh.keys()].sort(), "same files");
  for (const [path, text] of fresh)
    t.is(committed.get(path), text, `${path} differs: run npm run generate`);
});

async function files(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(relative(dir, path), await readFile(path, "utf8"));
  }
  return out;
}
