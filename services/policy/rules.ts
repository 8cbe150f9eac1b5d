import { createHash } from "node:crypto";

/**
 * Policy rules and bundles, as pure functions. A bundle is a text file, one
 * rule per line, in Casbin's CSV shape without the org (a bundle applies to
 * one org):
 *
 *   # developers may call Claude Sonnet, but no agent may use the shell tool
 *   p, role:developer, model:anthropic/claude-sonnet-*, invoke, allow
 *   p, role:agent, tool:mcp.shell/*, use, deny
 *   g, role:org-admin, role:developer     # org-admins inherit developer
 *   g, group:platform-team, role:org-admin
 */

export const actions = ["invoke", "use", "read", "manage"] as const;
export type Action = (typeof actions)[number];

export interface PermissionRule {
  kind: "p";
  subject: string;
  object: string;
  action: Action | "*";
  effect: "allow" | "deny";
}

export interface RoleRule {
  kind: "g";
  member: string;
  role: string;
}

export type PolicyRule = PermissionRule | RoleRule;

const principalId = /^(usr|agt|sva)_[0-9A-Za-z]{20}$/;
const roleName = /^role:[a-z][a-z0-9-]{0,62}$/;
const groupName = /^group:[A-Za-z0-9._@\-/ ]{1,200}$/;
const patternChars = "[A-Za-z0-9._\\-/*@:+]";
const objectPattern = new RegExp(
  `^(\\*|(model|tool|repo):${patternChars}{1,300}|audit|audit:content|audit:\\*|keys|policy|retention)$`,
);

/** Why a subject is not valid, or undefined. */
function subjectProblem(subject: string): string | undefined {
  if (principalId.test(subject) || roleName.test(subject) || groupName.test(subject))
    return undefined;
  return `subject ${JSON.stringify(subject)}: expected a principal id (usr_…, agt_…, sva_…), role:<name> or group:<name>`;
}

function objectProblem(object: string): string | undefined {
  if (objectPattern.test(object)) return undefined;
  return `object ${JSON.stringify(object)}: expected model:<provider>/<model>, tool:<name>, repo:<host/path>, audit, audit:content, keys, policy, retention or *`;
}

/** Parses one bundle line (without comments). Throws an Error whose message says what is wrong. */
export function parseRule(line: string): PolicyRule {
  const fields = line.split(",").map((f) => f.trim());
  const [kind, ...rest] = fields;
  if (kind === "p") {
    if (rest.length !== 4)
      throw new Error(
        `a permission has 4 fields after "p" (subject, object, action, effect), not ${rest.length}`,
      );
    const [subject, object, action, effect] = rest as [string, string, string, string];
    const problem = subjectProblem(subject) ?? objectProblem(object);
    if (problem) throw new Error(problem);
    if (action !== "*" && !(actions as readonly string[]).includes(action)) {
      throw new Error(`action ${JSON.stringify(action)}: expected ${actions.join(", ")} or *`);
    }
    if (effect !== "allow" && effect !== "deny")
      throw new Error(`effect ${JSON.stringify(effect)}: expected allow or deny`);
    return { kind, subject, object, action: action as Action | "*", effect };
  }
  if (kind === "g") {
    if (rest.length !== 2)
      throw new Error(`a role link has 2 fields after "g" (member, role), not ${rest.length}`);
    const [member, role] = rest as [string, string];
    const problem = subjectProblem(member);
    if (problem) throw new Error(problem.replace(/^subject/, "member"));
    if (!roleName.test(role)) throw new Error(`role ${JSON.stringify(role)}: expected role:<name>`);
    if (member === role) throw new Error(`${role} cannot be a member of itself`);
    return { kind, member, role };
  }
  throw new Error(
    `a rule starts with "p" (permission) or "g" (role link), not ${JSON.stringify(kind)}`,
  );
}

/** The canonical bundle line for a rule. */
export function ruleText(rule: PolicyRule): string {
  return rule.kind === "p"
    ? `p, ${rule.subject}, ${rule.object}, ${rule.action}, ${rule.effect}`
    : `g, ${rule.member}, ${rule.role}`;
}

/** A stable id from a rule's content, so the same rule has the same id everywhere. */
export function ruleId(rule: PolicyRule): string {
  return createHash("sha256").update(ruleText(rule)).digest("hex").slice(0, 16);
}

export interface BundleError {
  line: number;
  reason: string;
}

const maxBundleRules = 50_000;

/** Parses a bundle; every bad line is reported with its number. Duplicate lines count once. */
export function parseBundle(text: string): { rules: PolicyRule[]; errors: BundleError[] } {
  const rules = new Map<string, PolicyRule>();
  const errors: BundleError[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") return;
    try {
      const rule = parseRule(line);
      rules.set(ruleText(rule), rule);
    } catch (err) {
      errors.push({ line: index + 1, reason: (err as Error).message });
    }
  });
  if (rules.size > maxBundleRules)
    errors.push({ line: lines.length, reason: `more than ${maxBundleRules} rules` });
  const cycle = findRoleCycle([...rules.values()]);
  if (cycle) {
    const line =
      lines.findIndex(
        (l) => l.replace(/#.*$/, "").trim().startsWith("g") && l.includes(cycle[0]!),
      ) + 1;
    errors.push({ line, reason: `roles inherit in a circle: ${cycle.join(" → ")}` });
  }
  return { rules: sortRules([...rules.values()]), errors };
}

/** Role links first, then permissions; each by text. */
export function sortRules(rules: PolicyRule[]): PolicyRule[] {
  return [...rules].sort((a, b) =>
    a.kind === b.kind ? ruleText(a).localeCompare(ruleText(b)) : a.kind === "g" ? -1 : 1,
  );
}

/** What turns `current` into `next`. */
export function diffRules(
  current: PolicyRule[],
  next: PolicyRule[],
): { added: PolicyRule[]; removed: PolicyRule[] } {
  const before = new Set(current.map(ruleText));
  const after = new Set(next.map(ruleText));
  return {
    added: sortRules(next.filter((r) => !before.has(ruleText(r)))),
    removed: sortRules(current.filter((r) => !after.has(ruleText(r)))),
  };
}

/** A circle of role links (role:a → role:b → role:a), or undefined. */
export function findRoleCycle(rules: PolicyRule[]): string[] | undefined {
  const parents = new Map<string, string[]>();
  for (const r of rules)
    if (r.kind === "g") parents.set(r.member, [...(parents.get(r.member) ?? []), r.role]);
  const state = new Map<string, "open" | "done">();
  const walk = (node: string, path: string[]): string[] | undefined => {
    if (state.get(node) === "open") return [...path.slice(path.indexOf(node)), node];
    if (state.get(node) === "done") return undefined;
    state.set(node, "open");
    for (const parent of parents.get(node) ?? []) {
      const found = walk(parent, [...path, node]);
      if (found) return found;
    }
    state.set(node, "done");
    return undefined;
  };
  for (const node of parents.keys()) {
    const found = walk(node, []);
    if (found) return found;
  }
  return undefined;
}

/** Checks the object and action of a decision request (concrete names, no wildcards). */
export function requestProblem(
  subject: string,
  object: string,
  action: string,
): string | undefined {
  if (!(actions as readonly string[]).includes(action))
    return `action: expected ${actions.join(", ")}`;
  if (object.includes("*") || objectProblem(object))
    return objectProblem(object) ?? "object: a concrete name, without *";
  return subjectProblem(subject);
}

const compiled = new Map<string, RegExp>();

/** Whether a rule's object pattern (`*` matches any characters) covers a concrete object. */
export function objectMatches(pattern: string, object: string): boolean {
  if (pattern === object) return true;
  if (!pattern.includes("*")) return false;
  let re = compiled.get(pattern);
  if (!re) {
    re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`);
    if (compiled.size > 100_000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re.test(object);
}
