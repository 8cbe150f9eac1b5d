import { newEnforcer, newModelFromString, type Enforcer } from "casbin";
import { objectMatches, type PermissionRule, type PolicyRule } from "./rules.js";

/**
 * The Casbin model: RBAC with domains (the domain is the org), deny wins,
 * default deny. `g` links members to roles within an org, so roles inherit;
 * a request's subject set (the principal, its identity roles and IdP groups,
 * and every role they inherit through `g`) is matched against `p.sub`.
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
m = r.dom == p.dom && subjectIn(r.sub, p.sub) && actionMatch(r.act, p.act) && objectMatch(r.obj, p.obj)
`;

/** A decision: allowed only by an allow rule that no deny rule overrides. */
export interface Decision {
  allowed: boolean;
  /** `none` when no rule matched (default deny). */
  effect: "allow" | "deny" | "none";
  rule: PermissionRule | undefined;
}

/**
 * One org's rules loaded into a Casbin enforcer. Each org has its own, so a
 * rule of one org is not even present when another org's request is decided.
 */
export class OrgPolicy {
  /** The subjects of the request being decided; set just before the synchronous enforce. */
  private current = new Set<string>();
  private readonly expansions = new Map<string, Set<string>>();

  private constructor(
    readonly orgId: string,
    readonly version: bigint,
    readonly rules: readonly PolicyRule[],
    private readonly enforcer: Enforcer,
  ) {}

  static async load(
    orgId: string,
    version: bigint,
    rules: readonly PolicyRule[],
  ): Promise<OrgPolicy> {
    const enforcer = await newEnforcer(newModelFromString(casbinModel));
    const policy = new OrgPolicy(orgId, version, rules, enforcer);
    await enforcer.addFunction("subjectIn", (_sub: string, ruleSubject: string) =>
      policy.current.has(ruleSubject),
    );
    await enforcer.addFunction(
      "actionMatch",
      (action: string, ruleAction: string) => ruleAction === "*" || ruleAction === action,
    );
    await enforcer.addFunction("objectMatch", (object: string, pattern: string) =>
      objectMatches(pattern, object),
    );
    const permissions = rules
      .filter((r) => r.kind === "p")
      .map((r) => [r.subject, orgId, r.object, r.action, r.effect]);
    const links = rules.filter((r) => r.kind === "g").map((r) => [r.member, r.role, orgId]);
    if (links.length) await enforcer.addNamedGroupingPolicies("g", links);
    if (permissions.length) await enforcer.addNamedPolicies("p", permissions);
    return policy;
  }

  /** The subjects and every role they inherit in this org, through Casbin's role manager. */
  async expand(subjects: readonly string[]): Promise<Set<string>> {
    const key = subjects.join("\n");
    let all = this.expansions.get(key);
    if (!all) {
      all = new Set(subjects);
      for (const s of subjects)
        for (const role of await this.enforcer.getImplicitRolesForUser(s, this.orgId))
          all.add(role);
      if (this.expansions.size > 10_000) this.expansions.clear();
      this.expansions.set(key, all);
    }
    return all;
  }

  /** Decides for a subject set (see {@link expand}). */
  async decide(subjects: readonly string[], object: string, action: string): Promise<Decision> {
    const all = await this.expand(subjects);
    // enforceExSync runs the matcher synchronously, so no other decision can see `current`.
    this.current = all;
    const [allowed, explain] = this.enforcer.enforceExSync(
      subjects[0] ?? "",
      this.orgId,
      object,
      action,
    );
    this.current = new Set();
    if (explain.length === 0) return { allowed: false, effect: "none", rule: undefined };
    const [subject, , ruleObject, ruleAction, effect] = explain as [
      string,
      string,
      string,
      PermissionRule["action"],
      "allow" | "deny",
    ];
    return {
      allowed,
      effect,
      rule: { kind: "p", subject, object: ruleObject, action: ruleAction, effect },
    };
  }
}
