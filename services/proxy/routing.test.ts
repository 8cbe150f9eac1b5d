import test from "ava";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readRouting } from "./routing.js";

async function withRoutes(yaml: string, env: Record<string, string> = {}) {
  const dir = await mkdtemp(join(tmpdir(), "airlock-routing-"));
  const file = join(dir, "routes.yaml");
  // KEYFILE in a test's YAML stands for a key file written beside it.
  await writeFile(file, yaml.replace("KEYFILE", join(dir, "key")));
  await writeFile(join(dir, "key"), "sk-from-file\n");
  try {
    return readRouting({ AIRLOCK_ROUTES_FILE: file, ...env });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("with only the environment, every model goes to its API's provider under its own name", (t) => {
  const routing = readRouting({
    AIRLOCK_OPENAI_BASE_URL: "http://127.0.0.1:9/v1",
    AIRLOCK_OPENAI_API_KEY: "sk-x",
  });
  const route = routing.resolve("openai", "gpt-4o")!;
  t.is(route.targets[0]!.provider.baseUrl.href, "http://127.0.0.1:9/v1/");
  t.is(route.targets[0]!.provider.apiKey, "sk-x");
  t.is(route.targets[0]!.model, "gpt-4o");
  t.is(
    routing.resolve("anthropic", "claude-x")!.targets[0]!.provider.baseUrl.href,
    "https://api.anthropic.com/",
  );
});

test("a provider's key may come from a file, read once and trimmed", async (t) => {
  const routing = await withRoutes(
    `providers:\n  - { name: west, api: openai, base_url: "http://west/v1", api_key_file: KEYFILE }\n`,
  );
  t.is(routing.providers.find((p) => p.name === "west")!.apiKey, "sk-from-file");
});

const bad: [string, string, RegExp][] = [
  [
    "an inline key",
    "providers:\n  - { name: p, api: openai, base_url: 'http://x', api_key: sk-secret }\n",
    /not in the routes file/,
  ],
  [
    "an unknown API",
    "providers:\n  - { name: p, api: gemini, base_url: 'http://x' }\n",
    /api: openai or anthropic/,
  ],
  [
    "a missing key variable",
    "providers:\n  - { name: p, api: openai, base_url: 'http://x', api_key_env: NOPE }\n",
    /NOPE is not set/,
  ],
  [
    "an unknown provider",
    "models:\n  - { name: m, api: openai, targets: [{ provider: ghost, model: x }] }\n",
    /no provider ghost/,
  ],
  [
    "a target of another API",
    "models:\n  - { name: m, api: openai, targets: [{ provider: anthropic, model: x }] }\n",
    /cannot go to anthropic/,
  ],
  [
    "a model without targets",
    "models:\n  - { name: m, api: openai, targets: [] }\n",
    /at least one/,
  ],
  ["not YAML", "providers: [\n", /AIRLOCK_ROUTES_FILE=/],
  [
    "an unreadable key file",
    "providers:\n  - { name: p, api: openai, base_url: 'http://x', api_key_file: /nonexistent/key }\n",
    /cannot read \/nonexistent\/key \(ENOENT\)/,
  ],
];

for (const [name, yaml, message] of bad) {
  test(`a routes file with ${name} stops start-up with a clear error`, async (t) => {
    const err = await t.throwsAsync(withRoutes(yaml));
    t.regex(err!.message, message);
    t.false(err!.message.includes("sk-secret"), "never prints a key");
  });
}

test("a model in the routes file resolves to its targets in order", async (t) => {
  const routing = await withRoutes(
    `providers:
  - { name: east, api: openai, base_url: "http://east/v1", api_key_env: EAST_KEY }
models:
  - name: team-gpt
    api: openai
    targets:
      - { provider: east, model: gpt-4o }
      - { provider: openai, model: gpt-4o-mini }
`,
    { EAST_KEY: "sk-east" },
  );
  const route = routing.resolve("openai", "team-gpt")!;
  t.deepEqual(
    route.targets.map((x) => `${x.provider.name}/${x.model}`),
    ["east/gpt-4o", "openai/gpt-4o-mini"],
  );
  t.is(route.targets[0]!.provider.apiKey, "sk-east");
  t.is(
    routing.resolve("anthropic", "team-gpt")!.targets[0]!.provider.name,
    "anthropic",
    "names are per API",
  );
});
