import test from "ava";
import { OrgPolicy } from "./model.js";
import { parseBundle, ruleText } from "./rules.js";

const orgA = "org_AAAAAAAAAAAAAAAAAAAA";
const orgB = "org_BBBBBBBBBBBBBBBBBBBB";
const alice = "usr_aliceaaaaaaaaaaaaaaa";
const bot = "agt_botbbbbbbbbbbbbbbbbb";

const bundleA = `
g, role:org-admin, role:developer
g, role:agent, role:developer
g, group:platform, role:org-admin
p, role:developer, model:anthropic/claude-*, invoke, allow
p, role:developer, model:anthropic/claude-opus-*, invoke, deny
p, role:developer, tool:*, use, allow
p, role:agent, tool:mcp.shell/*, use, deny
p, role:org-admin, policy, *, allow
p, ${alice}, model:openai/*, invoke, allow
`;

let a: OrgPolicy;
let b: OrgPolicy;

test.before(async () => {
  const parsed = parseBundle(bundleA);
  if (parsed.errors.length) throw new Error(JSON.stringify(parsed.errors));
  a = await OrgPolicy.load(orgA, 1n, parsed.rules);
  b = await OrgPolicy.load(orgB, 1n, parseBundle("p, role:auditor, audit, read, allow").rules);
});

type Case = [
  name: string,
  org: () => OrgPolicy,
  subjects: string[],
  object: string,
  action: string,
  allowed: boolean,
  rule: string | undefined,
];

const cases: Case[] = [
  [
    "a direct role allows",
    () => a,
    ["role:developer"],
    "model:anthropic/claude-sonnet-4",
    "invoke",
    true,
    "p, role:developer, model:anthropic/claude-*, invoke, allow",
  ],
  [
    "an inherited role allows",
    () => a,
    [alice, "role:org-admin"],
    "model:anthropic/claude-haiku-4",
    "invoke",
    true,
    "p, role:developer, model:anthropic/claude-*, invoke, allow",
  ],
  [
    "a group inherits through two links",
    () => a,
    [alice, "group:platform"],
    "tool:mcp.github/create_pr",
    "use",
    true,
    "p, role:developer, tool:*, use, allow",
  ],
  [
    "a principal's own rule allows",
    () => a,
    [alice],
    "model:openai/gpt-4o",
    "invoke",
    true,
    `p, ${alice}, model:openai/*, invoke, allow`,
  ],
  [
    "deny beats an allow of the same role",
    () => a,
    ["role:developer"],
    "model:anthropic/claude-opus-4",
    "invoke",
    false,
    "p, role:developer, model:anthropic/claude-opus-*, invoke, deny",
  ],
  [
    "deny beats an inherited allow",
    () => a,
    [bot, "role:agent"],
    "tool:mcp.shell/exec",
    "use",
    false,
    "p, role:agent, tool:mcp.shell/*, use, deny",
  ],
  [
    "an agent inherits developer's models",
    () => a,
    [bot, "role:agent"],
    "model:anthropic/claude-sonnet-4",
    "invoke",
    true,
    "p, role:developer, model:anthropic/claude-*, invoke, allow",
  ],
  [
    "a wildcard action covers manage",
    () => a,
    ["role:org-admin"],
    "policy",
    "manage",
    true,
    "p, role:org-admin, policy, *, allow",
  ],
  [
    "default deny: no rule for the object",
    () => a,
    ["role:developer"],
    "model:openai/gpt-4o",
    "invoke",
    false,
    undefined,
  ],
  [
    "default deny: no rule for the action",
    () => a,
    ["role:developer"],
    "model:anthropic/claude-sonnet-4",
    "manage",
    false,
    undefined,
  ],
  [
    "default deny: unknown subject",
    () => a,
    ["usr_nobodyyyyyyyyyyyyyy"],
    "model:anthropic/claude-sonnet-4",
    "invoke",
    false,
    undefined,
  ],
  [
    "org isolation: org A's developer rule allows nothing in org B",
    () => b,
    ["role:developer"],
    "model:anthropic/claude-sonnet-4",
    "invoke",
    false,
    undefined,
  ],
  [
    "org isolation: org A's principal rule allows nothing in org B",
    () => b,
    [alice],
    "model:openai/gpt-4o",
    "invoke",
    false,
    undefined,
  ],
  [
    "org isolation: org A's group link means nothing in org B",
    () => b,
    ["group:platform"],
    "policy",
    "manage",
    false,
    undefined,
  ],
  [
    "org B's own rule allows in org B",
    () => b,
    ["role:auditor"],
    "audit",
    "read",
    true,
    "p, role:auditor, audit, read, allow",
  ],
  [
    "org B's rule allows nothing in org A",
    () => a,
    ["role:auditor"],
    "audit",
    "read",
    false,
    undefined,
  ],
];

for (const [name, org, subjects, object, action, allowed, rule] of cases) {
  test(name, async (t) => {
    const decision = await org().decide(subjects, object, action);
    t.is(decision.allowed, allowed);
    t.is(decision.rule && ruleText(decision.rule), rule);
    t.is(decision.effect, rule === undefined ? "none" : allowed ? "allow" : "deny");
  });
}

test("concurrent decisions for different subjects never see each other's subjects", async (t) => {
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      a
        .decide(
          i % 2 ? ["role:developer"] : ["role:nobody"],
          "model:anthropic/claude-sonnet-4",
          "invoke",
        )
        .then((d) => [i, d.allowed] as const),
    ),
  );
  for (const [i, allowed] of results) t.is(allowed, i % 2 === 1);
});
