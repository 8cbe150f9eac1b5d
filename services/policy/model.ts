import { newEnforcer, newModelFromString, type Enforcer } from "casbin";
import { objectMatches, type PermissionRule, type PolicyRule } from "./rules.js";

/**
 * The Casbin model: RBAC with domains (the domain is the org), deny wins,
 * default deny. `g` links members to roles within an org, so roles inherit;
 * the subjects a request acts as (the principal, its identity roles and IdP
 * groups, and every role they inherit through `g`) are each matched against
 * `p.sub`.
 */
export const casbinModel = `
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act, eft

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = r.dom == p.dom && r.sub == p.sub && actionMatch(r.act, p.act) && objectMatch(r.obj, p.obj)
`;

/** A decision: allowed only by an allow rule that no deny rule overrides. */
export interface Decision {
  allowed: boolean;
  /** `none` when no rule matched (default deny). */
  effect: "allow" | "deny" | "none";
  rule: PermissionRule | undefined;
}

async function enforcer(): Promise<Enforcer> {
  const e = await newEnforcer(newModelFromString(casbinModel));
  await e.addFunction(
    "actionMatch",
    (action: string, ruleAction: string) => ruleAction === "*" || ruleAction === action,
  );
  await e.addFunction("objectMatch", (object: string, pattern: string) =>
    objectMatches(pattern, object),
  );
  return e;
}

/**
 * One org's rules in Casbin. Each org has its own enforcers, so a rule of
 * one org is not even present when another org's request is decided.
 *
 * Casbin evaluates its matcher once per rule of an enforcer (about 3 µs each
 * here), so one enforcer over 10,000 rules takes tens of milliseconds per
 * decision. The permissions are therefore split by subject, one enforcer
 * each, built on first use: a decision only scans the rules of the subjects
 * the request acts as. Deny still wins across all of them.
 */
export class OrgPolicy {
  private readonly bySubject = new Map<string, string[][]>();
  private readonly enforcers = new Map<string, Promise<Enforcer>>();
  private readonly expansions = new Map<string, string[]>();

  private constructor(
    readonly orgId: string,
    readonly version: bigint,
    readonly rules: readonly PolicyRule[],
    private readonly roles: Enforcer,
  ) {
    for (const r of rules) {
      if (r.kind !== "p") continue;
      const list = this.bySubject.get(r.subject) ?? [];
      list.push([r.subject, orgId, r.object, r.action, r.effect]);
      this.bySubject.set(r.subject, list);
    }
  }

  static async load(
    orgId: string,
    version: bigint,
    rules: readonly PolicyRule[],
  ): Promise<OrgPolicy> {
    const roles = await enforcer();
    const links = rules.filter((r) => r.kind === "g").map((r) => [r.member, r.role, orgId]);
    if (links.length) await roles.addNamedGroupingPolicies("g", links);
    return new OrgPolicy(orgId, version, rules, roles);
  }

  /** The subjects and every role they inherit in this org, through Casbin's role manager. */
  async expand(subjects: readonly string[]): Promise<string[]> {
    const key = subjects.join("\n");
    let all = this.expansions.get(key);
    if (!all) {
      const set = new Set(subjects);
      for (const s of subjects)
        for (const role of await this.roles.getImplicitRolesForUser(s, this.orgId)) set.add(role);
      all = [...set];
      if (this.expansions.size > 10_000) this.expansions.clear();
      this.expansions.set(key, all);
    }
    return all;
  }

  /** Decides for what `subjects` act as (see {@link expand}). */
  async decide(subjects: readonly string[], object: string, action: string): Promise<Decision> {
    let allow: PermissionRule | undefined;
    for (const subject of await this.expand(subjects)) {
      const e = await this.enforcerOf(subject);
      if (!e) continue;
      const [allowed, explain] = e.enforceExSync(subject, this.orgId, object, action);
      if (explain.length === 0) continue;
      const [, , ruleObject, ruleAction, effect] = explain as [
        string,
        string,
        string,
        PermissionRule["action"],
        "allow" | "deny",
      ];
      const rule: PermissionRule = {
        kind: "p",
        subject,
        object: ruleObject,
        action: ruleAction,
        effect,
      };
      if (!allowed) return { allowed: false, effect: "deny", rule };
      allow ??= rule;
    }
    return allow
      ? { allowed: true, effect: "allow", rule: allow }
      : { allowed: false, effect: "none", rule: undefined };
  }

  private enforcerOf(subject: string): Promise<Enforcer> | undefined {
    const rules = this.bySubject.get(subject);
    if (!rules) return undefined;
    let e = this.enforcers.get(subject);
    if (!e) {
      e = enforcer().then(async (created) => {
        await created.addNamedPolicies("p", rules);
        return created;
      });
      this.enforcers.set(subject, e);
    }
    return e;
  }
}
