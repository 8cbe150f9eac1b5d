#!/usr/bin/env node
// `npm run build`: compiles services/ and gen/ with tsc into dist/ (or the
// directory given as the first argument), then copies what the compiled code
// reads from disk beside it: each service's migrations/*.sql (read through
// `new URL("./migrations", import.meta.url)`) and the starter policy bundle
// (read by `airlock bootstrap` as ../../deploy/policies/starter.csv).
// Run the result with `node dist/services/cli/main.js serve …`: no TypeScript
// loader at run time, production dependencies only.
import { execFileSync } from "node:child_process";
import { cp, mkdir, readdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = resolve(process.argv[2] ?? join(root, "dist"));

await rm(out, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [
    join(root, "node_modules", "typescript", "bin", "tsc"),
    "-p",
    join(root, "tsconfig.build.json"),
    "--outDir",
    out,
  ],
  { stdio: "inherit" },
);

const services = join(root, "services");
for (const entry of await readdir(services, { withFileTypes: true })) {
  if (!entry.isDirectory()) continue;
  const from = join(services, entry.name, "migrations");
  const files = await readdir(from).catch(() => []);
  if (!files.length) continue;
  await cp(from, join(out, "services", entry.name, "migrations"), {
    recursive: true,
    filter: (src) => !src.endsWith(".ts"),
  });
}
await mkdir(join(out, "deploy"), { recursive: true });
await cp(join(root, "deploy", "policies"), join(out, "deploy", "policies"), { recursive: true });
console.log(`built ${out}`);
