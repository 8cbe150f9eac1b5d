import test from "ava";
import {
  diffRules,
  findRoleCycle,
  objectMatches,
  parseBundle,
  parseRule,
  ruleId,
  ruleText,
  type PolicyRule,
} from "./rules.js";

test("a bundle line round-trips to its canonical text, whatever its spacing", (t) => {
  const rule = parseRule("p,role:developer ,  model:openai/gpt-4o* , invoke,allow");
  t.is(ruleText(rule), "p, role:developer, model:openai/gpt-4o*, invoke, allow");
  t.is(ruleId(rule), ruleId(parseRule(ruleText(rule))));
  t.is(
    ruleText(parseRule("g, group:platform, role:org-admin")),
    "g, group:platform, role:org-admin",
  );
});

const badLines: [string, RegExp][] = [
  ["x, role:a, model:x/y, invoke, allow", /starts with "p".*or "g"/],
  ["p, role:a, model:x/y, invoke", /4 fields/],
  ["p, root, model:x/y, invoke, allow", /subject "root"/],
  ["p, role:a, database:x, invoke, allow", /object "database:x"/],
  ["p, role:a, model:x/y, write, allow", /action "write"/],
  ["p, role:a, model:x/y, invoke, maybe", /effect "maybe"/],
  ["g, role:a", /2 fields/],
  ["g, role:a, usr_00000000000000000000", /role "usr_/],
  ["g, role:a, role:a", /member of itself/],
];

for (const [line, reason] of badLines) {
  test(`refused: ${line}`, (t) => {
    t.throws(() => parseRule(line), { message: reason });
  });
}

test("a bundle reports every bad line by number and ignores comments and blank lines", (t) => {
  const { rules, errors } = parseBundle(
    [
      "# header",
      "",
      "p, role:a, model:x/*, invoke, allow  # trailing comment",
      "p, role:a, model:x/*, fly, allow",
      "g, role:a",
      "p, role:a, model:x/*, invoke, allow",
    ].join("\n"),
  );
  t.deepEqual(
    errors.map((e) => e.line),
    [4, 5],
  );
  t.is(rules.length, 1, "duplicates count once");
});

test("roles inheriting in a circle are refused", (t) => {
  const { errors } = parseBundle("g, role:a, role:b\ng, role:b, role:c\ng, role:c, role:a\n");
  t.is(errors.length, 1);
  t.regex(errors[0]!.reason, /circle: role:a → role:b → role:c → role:a/);
  t.is(findRoleCycle([parseRule("g, role:a, role:b")]), undefined);
});

test("the difference between two rule sets", (t) => {
  const r = (s: string) => parseRule(s);
  const current: PolicyRule[] = [r("p, role:a, model:x/*, invoke, allow"), r("g, role:b, role:a")];
  const next: PolicyRule[] = [
    r("p, role:a, model:x/*, invoke, allow"),
    r("p, role:a, tool:*, use, allow"),
  ];
  const diff = diffRules(current, next);
  t.deepEqual(diff.added.map(ruleText), ["p, role:a, tool:*, use, allow"]);
  t.deepEqual(diff.removed.map(ruleText), ["g, role:b, role:a"]);
});

test("object patterns: * matches any characters, everything else literally", (t) => {
  t.true(objectMatches("model:anthropic/claude-*", "model:anthropic/claude-sonnet-4"));
  t.true(objectMatches("model:openai/*", "model:openai/gpt-4o"));
  t.true(objectMatches("*", "audit:content"));
  t.true(objectMatches("audit", "audit"));
  t.false(objectMatches("audit", "audit:content"));
  t.false(objectMatches("model:openai/gpt-4o", "model:openai/gpt-4o-mini"));
  t.false(objectMatches("model:openai/gpt.4o", "model:openai/gpt-4o"), "a dot is a dot");
  t.false(objectMatches("model:anthropic/*", "model:openai/gpt-4o"));
});
