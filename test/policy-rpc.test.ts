import test from "ava";
import pg from "pg";
import { Code } from "@connectrpc/connect";
import { PrincipalKind } from "../gen/airlock/identity/v1/identity_pb.js";
import { Effect, PolicyService } from "../gen/airlock/policy/v1/policy_pb.js";
import { identityDefinition } from "../services/identity/run.js";
import { policyDefinition } from "../services/policy/run.js";
import { DecisionCache } from "../services/kit/decision-cache.js";
import { RedisCache } from "../services/kit/shared-cache.js";
import { starterBundle } from "../services/cli/policy-commands.js";
import { code } from "./support/codes.js";
import { redisUrl } from "./support/env.js";
import { insertOrg } from "./support/orgs.js";
import { startServices, type Harness } from "./support/runtime.js";

let h: Harness;
let admin: { token: string; id: string; orgId: string };
let agent: { token: string; id: string };

test.before(async () => {
  h = await startServices([identityDefinition, policyDefinition]);
  const boot = await h.client().bootstrap({ orgName: "policed", adminEmail: "admin@policed.test" });
  admin = { token: boot.token, id: boot.admin!.id, orgId: boot.org!.id };
  await h
    .connect(PolicyService, admin.token)
    .applyBundle({ orgId: admin.orgId, bundle: starterBundle() });
  const bot = (
    await h.client(admin.token).createPrincipal({ kind: PrincipalKind.AGENT, displayName: "bot" })
  ).principal!;
  // An agent whose token carries the admin scope: only policy stands between it and the rules.
  const token = await h
    .client(admin.token)
    .createToken({ principalId: bot.id, scopes: ["admin", "llm"] });
  agent = { token: token.token, id: bot.id };
});
test.after.always(async () => h?.close());

const policy = (token: string) => h.connect(PolicyService, token);
const rules = async () => (await policy(admin.token).listRules({})).rules.map((r) => r.text);

async function outbox(
  action: string,
): Promise<{ actor: string; attributes: Record<string, unknown> }[]> {
  const db = new pg.Client({ connectionString: h.databaseUrl });
  await db.connect();
  const { rows } = await db.query(
    "SELECT actor, attributes FROM policy.audit_outbox WHERE action = $1 ORDER BY occurred_at",
    [action],
  );
  await db.end();
  return rows;
}

test.serial(
  "the starter bundle: the admin manages policy and invokes models but does not read prompt content",
  async (t) => {
    const check = (object: string, action: string) =>
      policy(admin.token).check({ subject: admin.id, orgId: admin.orgId, object, action });
    t.true((await check("policy", "manage")).allowed);
    t.true((await check("model:anthropic/claude-opus-4", "invoke")).allowed);
    const content = await check("audit:content", "read");
    t.false(content.allowed);
    t.is(content.effect, Effect.UNSPECIFIED);
    t.regex(content.reason, /no rule allows usr_\w+ to read audit:content/);
    const byAgent = await policy(agent.token).check({
      subject: agent.id,
      orgId: admin.orgId,
      object: "model:anthropic/claude-sonnet-4-5",
      action: "invoke",
    });
    t.true(byAgent.allowed, "agents inherit developer's approved models");
    t.is(byAgent.rule?.text, "p, role:developer, model:anthropic/claude-sonnet-*, invoke, allow");
    t.false(
      (
        await policy(agent.token).check({
          subject: agent.id,
          orgId: admin.orgId,
          object: "model:anthropic/claude-opus-4",
          action: "invoke",
        })
      ).allowed,
    );
  },
);

test.serial(
  "ApplyBundle with one bad line is refused with its line number and changes nothing",
  async (t) => {
    const before = await policy(admin.token).listRules({});
    const bundle = `${starterBundle()}\np, role:developer, model:openai/*, invoke, allow\np, role:developer, model:openai/*, yeet, allow\n`;
    const badLine = bundle.split("\n").findIndex((l) => l.includes("yeet")) + 1;
    const err = await t.throwsAsync(policy(admin.token).applyBundle({ bundle }));
    t.regex((err as Error).message, new RegExp(`line ${badLine}: action "yeet"`));
    const after = await policy(admin.token).listRules({});
    t.deepEqual(
      after.rules.map((r) => r.text),
      before.rules.map((r) => r.text),
    );
    t.is(after.policyVersion, before.policyVersion);
  },
);

test.serial(
  "a dry run shows the exact difference and changes nothing; applying then makes exactly that difference",
  async (t) => {
    const before = await rules();
    const bundle = starterBundle()
      .replace("p, role:developer, model:openai/o4-mini*, invoke, allow\n", "")
      .concat(
        "p, role:developer, model:openai/gpt-5*, invoke, allow\np, role:agent, tool:mcp.shell/*, use, deny\n",
      );
    const dry = await policy(admin.token).applyBundle({ bundle, dryRun: true });
    t.false(dry.applied);
    t.deepEqual(
      dry.added.map((r) => r.text),
      [
        "p, role:agent, tool:mcp.shell/*, use, deny",
        "p, role:developer, model:openai/gpt-5*, invoke, allow",
      ],
    );
    t.deepEqual(
      dry.removed.map((r) => r.text),
      ["p, role:developer, model:openai/o4-mini*, invoke, allow"],
    );
    t.deepEqual(await rules(), before, "nothing changed");
    const real = await policy(admin.token).applyBundle({ bundle });
    t.true(real.applied);
    t.deepEqual(
      real.added.map((r) => r.text),
      dry.added.map((r) => r.text),
    );
    t.deepEqual(
      real.removed.map((r) => r.text),
      dry.removed.map((r) => r.text),
    );
    t.is(real.bundleSha256, dry.bundleSha256);
    t.is(real.policyVersion, dry.policyVersion + 1n);
    const recorded = (await outbox("bundle_applied")).at(-1)!;
    t.is(recorded.actor, admin.id);
    t.is(recorded.attributes.bundle_sha256, real.bundleSha256);
    t.deepEqual(recorded.attributes.removed, [
      "p, role:developer, model:openai/o4-mini*, invoke, allow",
    ]);
    await policy(admin.token).applyBundle({ bundle: starterBundle() });
  },
);

test.serial(
  "a principal without manage on policy cannot change rules, and the attempt is recorded",
  async (t) => {
    const before = await rules();
    t.is(
      await code(
        policy(agent.token).addRules({
          rules: [{ text: "p, role:agent, model:*, invoke, allow" }],
        }),
      ),
      Code.PermissionDenied,
    );
    t.is(
      await code(
        policy(agent.token).removeRules({
          rules: [{ text: "p, role:developer, tool:*, use, allow" }],
        }),
      ),
      Code.PermissionDenied,
    );
    t.is(
      await code(policy(agent.token).applyBundle({ bundle: "p, role:agent, *, *, allow" })),
      Code.PermissionDenied,
    );
    t.deepEqual(await rules(), before);
    const refused = (await outbox("refused")).filter((r) => r.actor === agent.id);
    t.is(refused.length, 3);
    t.regex(String(refused[0]!.attributes.reason), /needs manage on policy/);
  },
);

test.serial("an org-admin's token without the admin scope cannot change rules", async (t) => {
  const llmOnly = await h.client(admin.token).createToken({ scopes: ["llm"] });
  t.is(
    await code(
      policy(llmOnly.token).addRules({
        rules: [{ text: "p, role:agent, model:*, invoke, allow" }],
      }),
    ),
    Code.PermissionDenied,
  );
});

test.serial(
  "a change that would take away the caller's own manage on policy is refused",
  async (t) => {
    const err = await t.throwsAsync(
      policy(admin.token).removeRules({ rules: [{ text: "p, role:org-admin, policy, *, allow" }] }),
    );
    t.regex((err as Error).message, /could no longer manage/);
    t.true((await rules()).includes("p, role:org-admin, policy, *, allow"));
  },
);

test.serial("AddRules and RemoveRules change the decisions and report what changed", async (t) => {
  const ask = () =>
    policy(admin.token).check({
      subject: "role:developer",
      orgId: admin.orgId,
      object: "model:mistral/large",
      action: "invoke",
    });
  t.false((await ask()).allowed);
  const added = await policy(admin.token).addRules({
    rules: [
      { text: "p, role:developer, model:mistral/*, invoke, allow" },
      { text: "p, role:developer, tool:*, use, allow" },
    ],
  });
  t.deepEqual(
    added.added.map((r) => r.text),
    ["p, role:developer, model:mistral/*, invoke, allow"],
    "an existing rule is not added twice",
  );
  t.true((await ask()).allowed);
  const removed = await policy(admin.token).removeRules({
    rules: [{ text: "p, role:developer, model:mistral/*, invoke, allow" }],
  });
  t.is(removed.removed.length, 1);
  t.false((await ask()).allowed);
});

test.serial(
  "Check: a principal asks about itself; about another subject only with manage on policy",
  async (t) => {
    t.is(
      await code(
        policy(agent.token).check({
          subject: admin.id,
          orgId: admin.orgId,
          object: "policy",
          action: "manage",
        }),
      ),
      Code.PermissionDenied,
    );
    t.is(
      await code(
        policy(admin.token).check({
          subject: agent.id,
          orgId: admin.orgId,
          object: "tool:x",
          action: "use",
        }),
      ),
      "ok",
    );
    t.is(
      await code(
        policy(admin.token).check({
          subject: admin.id,
          orgId: admin.orgId,
          object: "model:*",
          action: "invoke",
        }),
      ),
      Code.InvalidArgument,
    );
    t.is(
      await code(
        policy(admin.token).check({
          subject: admin.id,
          orgId: admin.orgId,
          object: "policy",
          action: "delete",
        }),
      ),
      Code.InvalidArgument,
    );
  },
);

test.serial(
  "org isolation: another org's admin can neither read nor change this org's rules, and its rules decide nothing here",
  async (t) => {
    const other = await insertOrg(h.databaseUrl, "rival");
    t.is(await code(policy(other.token).listRules({ orgId: admin.orgId })), Code.PermissionDenied);
    t.is(
      await code(
        policy(other.token).applyBundle({
          orgId: admin.orgId,
          bundle: "p, role:org-admin, *, *, allow",
        }),
      ),
      Code.PermissionDenied,
    );
    t.is(
      await code(
        policy(other.token).check({
          subject: admin.id,
          orgId: admin.orgId,
          object: "policy",
          action: "manage",
        }),
      ),
      Code.PermissionDenied,
    );
    // Its own first bundle, as an org-admin of an org without rules:
    await policy(other.token).applyBundle({ bundle: "p, role:org-admin, *, *, allow" });
    const here = await policy(admin.token).check({
      subject: admin.id,
      orgId: admin.orgId,
      object: "audit:content",
      action: "read",
    });
    t.false(here.allowed, "the rival's catch-all rule does not reach this org");
    const crossOrg = await policy(other.token).check({
      subject: admin.id,
      orgId: other.orgId,
      object: "policy",
      action: "manage",
    });
    t.false(crossOrg.allowed);
    t.regex(crossOrg.reason, /belongs to another org/);
  },
);

test.serial("BatchCheck answers every check in order", async (t) => {
  const objects = [
    "model:anthropic/claude-sonnet-4",
    "model:anthropic/claude-opus-4",
    "tool:mcp.github/x",
    "audit:content",
  ];
  const res = await policy(agent.token).batchCheck({
    checks: objects.map((object) => ({
      subject: agent.id,
      orgId: admin.orgId,
      object,
      action: object.startsWith("tool") ? "use" : object.startsWith("audit") ? "read" : "invoke",
    })),
  });
  t.deepEqual(
    res.results.map((r) => r.allowed),
    [true, false, true, false],
  );
});

test.serial(
  "the decision cache answers repeats without asking, and a change reaches it at once",
  async (t) => {
    let calls = 0;
    const counted = h.connect(PolicyService, admin.token);
    const client = {
      ...counted,
      check: (req: Parameters<typeof counted.check>[0]) => (calls++, counted.check(req)),
    } as typeof counted;
    const redis = new RedisCache(redisUrl);
    const cache = new DecisionCache(client, redis);
    await cache.start();
    t.teardown(async () => {
      await cache.stop();
      await redis.close();
    });
    const ask = () =>
      cache.check({
        subject: "role:developer",
        orgId: admin.orgId,
        object: "model:mistral/small",
        action: "invoke",
      });
    t.false((await ask()).allowed);
    t.false((await ask()).allowed);
    t.is(calls, 1);
    await policy(admin.token).addRules({
      rules: [{ text: "p, role:developer, model:mistral/*, invoke, allow" }],
    });
    let allowed = false;
    for (let i = 0; i < 100 && !allowed; i++) {
      allowed = (await ask()).allowed;
      if (!allowed) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    t.true(allowed, "the new rule is seen through the cache");
    t.is(calls, 2, "one more call, after the change message");
  },
);
