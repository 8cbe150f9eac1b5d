import test from "ava";
import { access, requireAdminScope, type Actor } from "./authorize.js";

const actor = (over: Partial<Actor> = {}): Actor => ({
  id: "usr_me",
  orgId: "org_a",
  kind: "user",
  roles: ["developer"],
  scopes: ["admin", "llm"],
  ...over,
});

const cases: [
  string,
  Actor,
  { id: string; orgId: string; ownerId: string | null },
  ReturnType<typeof access>,
][] = [
  ["itself", actor(), { id: "usr_me", orgId: "org_a", ownerId: null }, "allowed"],
  ["an agent it owns", actor(), { id: "agt_1", orgId: "org_a", ownerId: "usr_me" }, "allowed"],
  [
    "another user's agent",
    actor(),
    { id: "agt_2", orgId: "org_a", ownerId: "usr_other" },
    "denied",
  ],
  ["another user", actor(), { id: "usr_other", orgId: "org_a", ownerId: null }, "denied"],
  [
    "admin: anyone in its org",
    actor({ roles: ["org-admin"] }),
    { id: "usr_other", orgId: "org_a", ownerId: null },
    "allowed",
  ],
  [
    "admin: nobody in another org",
    actor({ roles: ["org-admin"] }),
    { id: "usr_x", orgId: "org_b", ownerId: null },
    "invisible",
  ],
  [
    "same id in another org is still invisible",
    actor(),
    { id: "usr_me", orgId: "org_b", ownerId: null },
    "invisible",
  ],
];

for (const [name, who, target, expected] of cases) {
  test(`access: ${name} → ${expected}`, (t) => {
    t.is(access(who, target), expected);
  });
}

test("management needs the admin scope even for an org-admin", (t) => {
  t.notThrows(() => requireAdminScope(actor()));
  t.throws(() => requireAdminScope(actor({ roles: ["org-admin"], scopes: ["llm"] })), {
    message: /admin scope/,
  });
});
