import { createHash } from "node:crypto";
import type { AuditEvent } from "../kit/audit-events.js";
import { DomainError, denied, invalid, precondition } from "../kit/errors.js";
import type { PolicyEngine } from "./engine.js";
import { OrgPolicy, type Decision } from "./model.js";
import { diffRules, parseBundle, requestProblem, ruleText, type PolicyRule } from "./rules.js";
import type { PolicyStore } from "./store.js";
import type { SubjectResolver } from "./subjects.js";

/** Who calls: another service, or a principal with the subjects it acts as. */
export type PolicyCaller =
  | { kind: "service"; service: string }
  | { kind: "principal"; id: string; orgId: string; subjects: string[]; scopes: readonly string[] };

export interface CheckResult extends Decision {
  version: bigint;
  reason: string;
}

/** The org-admin role as identity assigns it, allowed to apply an org's very first bundle. */
const firstBundleRole = "role:org-admin";

/** Policy's domain: decisions, and changes to the rules that are themselves decided by policy. */
export class Policy {
  constructor(
    private readonly deps: { store: PolicyStore; engine: PolicyEngine; subjects: SubjectResolver },
  ) {}

  async check(
    caller: PolicyCaller,
    request: { subject: string; orgId: string; object: string; action: string },
  ): Promise<CheckResult> {
    const problem = requestProblem(request.subject, request.object, request.action);
    if (problem) throw invalid(problem);
    if (!request.orgId) throw invalid("org_id: required");
    if (caller.kind === "principal") {
      const self = request.subject === caller.id && request.orgId === caller.orgId;
      if (!self) await this.authorize(caller, request.orgId, "manage", "check another subject");
    }
    const policy = await this.deps.engine.policy(request.orgId);
    const subject = await this.deps.subjects.resolve(request.subject);
    if (!subject.known) {
      return {
        allowed: false,
        effect: "none",
        rule: undefined,
        version: policy.version,
        reason: `no principal ${request.subject}`,
      };
    }
    if (subject.orgId !== undefined && subject.orgId !== request.orgId) {
      return {
        allowed: false,
        effect: "none",
        rule: undefined,
        version: policy.version,
        reason: `${request.subject} belongs to another org`,
      };
    }
    const decision = await policy.decide(subject.subjects, request.object, request.action);
    return { ...decision, version: policy.version, reason: explain(decision, request) };
  }

  async listRules(
    caller: PolicyCaller,
    orgId: string,
  ): Promise<{ rules: readonly PolicyRule[]; version: bigint }> {
    const org = this.orgOf(caller, orgId);
    if (caller.kind === "principal") await this.authorize(caller, org, "read", "list rules");
    const policy = await this.deps.engine.policy(org);
    return { rules: policy.rules, version: policy.version };
  }

  async addRules(caller: PolicyCaller, orgId: string, rules: PolicyRule[]) {
    return this.change(caller, orgId, { add: rules, remove: [] }, "rules_added");
  }

  async removeRules(caller: PolicyCaller, orgId: string, rules: PolicyRule[]) {
    return this.change(caller, orgId, { add: [], remove: rules }, "rules_removed");
  }

  /** Replaces the org's rules with the bundle's, atomically; a dry run only reports the difference. */
  async applyBundle(caller: PolicyCaller, orgId: string, text: string, dryRun: boolean) {
    const org = this.orgOf(caller, orgId);
    const sha256 = createHash("sha256").update(text).digest("hex");
    const parsed = parseBundle(text);
    if (parsed.errors.length > 0) {
      const shown = parsed.errors.slice(0, 10).map((e) => `line ${e.line}: ${e.reason}`);
      if (parsed.errors.length > 10) shown.push(`and ${parsed.errors.length - 10} more`);
      throw invalid(`bundle refused, nothing changed: ${shown.join("; ")}`);
    }
    const current = await this.deps.engine.policy(org);
    const first =
      current.rules.length === 0 &&
      caller.kind === "principal" &&
      caller.subjects.includes(firstBundleRole);
    if (!first)
      await this.authorize(caller, org, "manage", "apply a bundle", { bundle_sha256: sha256 });
    await this.keepsCallerInCharge(caller, org, parsed.rules);
    if (dryRun)
      return {
        ...diffRules([...current.rules], parsed.rules),
        sha256,
        applied: false,
        version: current.version,
      };
    const done = await this.deps.store.replace(org, parsed.rules, actorOf(caller), (d) =>
      changeEvent(caller, org, "bundle_applied", d, { bundle_sha256: sha256 }),
    );
    await this.deps.engine.changed(org, done.version);
    return { ...done, sha256, applied: true };
  }

  private async change(
    caller: PolicyCaller,
    orgId: string,
    change: { add: PolicyRule[]; remove: PolicyRule[] },
    action: string,
  ) {
    const org = this.orgOf(caller, orgId);
    if (change.add.length + change.remove.length === 0) throw invalid("rules: at least one");
    if (change.add.length + change.remove.length > 1000)
      throw invalid("rules: at most 1000 per call; apply a bundle for more");
    await this.authorize(caller, org, "manage", action.replace("_", " "));
    const current = await this.deps.engine.policy(org);
    const removing = new Set(change.remove.map(ruleText));
    await this.keepsCallerInCharge(caller, org, [
      ...current.rules.filter((r) => !removing.has(ruleText(r))),
      ...change.add,
    ]);
    const done = await this.deps.store.change(org, change, actorOf(caller), (d) =>
      changeEvent(caller, org, action, d),
    );
    await this.deps.engine.changed(org, done.version);
    return done;
  }

  /** The org a call is about: the caller's own unless it names one, and only its own for a principal. */
  private orgOf(caller: PolicyCaller, orgId: string): string {
    if (caller.kind === "service") {
      if (!orgId) throw invalid("org_id: required for service callers");
      return orgId;
    }
    return orgId || caller.orgId;
  }

  /**
   * The caller must be allowed `action` on `policy` in the org (and, to
   * change rules, call with an admin-scoped token). A refused change is
   * recorded for the audit log.
   */
  private async authorize(
    caller: PolicyCaller,
    orgId: string,
    action: "read" | "manage",
    what: string,
    attributes: AuditEvent["attributes"] = {},
  ): Promise<void> {
    if (caller.kind === "service") {
      if (action === "read") return;
      throw denied("services may not change policy");
    }
    let refusal: DomainError | undefined;
    if (orgId !== caller.orgId) refusal = denied(`${what}: not allowed in another org`);
    else if (action === "manage" && !caller.scopes.includes("admin"))
      refusal = denied(`${what}: this token lacks the admin scope`);
    else {
      const decision = await (
        await this.deps.engine.policy(orgId)
      ).decide(caller.subjects, "policy", action);
      if (!decision.allowed) {
        refusal = denied(
          `${what}: needs ${action} on policy (${explain(decision, { subject: caller.id, object: "policy", action })})`,
        );
      }
    }
    if (!refusal) return;
    if (action === "manage") {
      await this.deps.store.record({
        kind: "policy.change",
        action: "refused",
        orgId,
        actor: caller.id,
        subject: "policy",
        attributes: { attempted: what, reason: refusal.message, ...attributes },
      });
    }
    throw refusal;
  }

  /** Refuses a change after which the caller could no longer manage the org's policy: nobody could undo it. */
  private async keepsCallerInCharge(
    caller: PolicyCaller,
    orgId: string,
    next: PolicyRule[],
  ): Promise<void> {
    if (caller.kind === "service") return;
    const after = await OrgPolicy.load(orgId, 0n, next);
    if (!(await after.decide(caller.subjects, "policy", "manage")).allowed) {
      throw precondition(
        "refused: after this change you could no longer manage this org's policy (add a rule keeping manage on policy)",
      );
    }
  }
}

function actorOf(caller: PolicyCaller): string {
  return caller.kind === "service" ? `service:${caller.service}` : caller.id;
}

function changeEvent(
  caller: PolicyCaller,
  orgId: string,
  action: string,
  done: { added: PolicyRule[]; removed: PolicyRule[] },
  extra: AuditEvent["attributes"] = {},
): AuditEvent {
  return {
    kind: "policy.change",
    action,
    orgId,
    actor: actorOf(caller),
    subject: "policy",
    attributes: { added: done.added.map(ruleText), removed: done.removed.map(ruleText), ...extra },
  };
}

/** One sentence on a decision, naming the rule, or the permission that is missing. */
export function explain(
  decision: Decision,
  request: { subject: string; object: string; action: string },
): string {
  if (decision.rule)
    return `${decision.allowed ? "allowed" : "denied"} by rule "${ruleText(decision.rule)}"`;
  return `no rule allows ${request.subject} to ${request.action} ${request.object}`;
}
