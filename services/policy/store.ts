import type { AuditEvent } from "../kit/audit-events.js";
import type { PolicyRule } from "./rules.js";

/** An org's rules at a version. */
export interface OrgRules {
  rules: PolicyRule[];
  version: bigint;
}

/** What a change did. */
export interface RuleChange {
  added: PolicyRule[];
  removed: PolicyRule[];
  version: bigint;
}

/**
 * Policy's persistence. Every change bumps the org's version and stores its
 * audit event in the same transaction.
 */
export interface PolicyStore {
  load(orgId: string): Promise<OrgRules>;
  /** Every org's current version, to catch up on changes a replica did not hear of. */
  versions(): Promise<Map<string, bigint>>;
  /** Adds and removes rules; `event` is completed with what actually changed. */
  change(
    orgId: string,
    change: { add: PolicyRule[]; remove: PolicyRule[] },
    actor: string,
    event: (done: { added: PolicyRule[]; removed: PolicyRule[] }) => AuditEvent,
  ): Promise<RuleChange>;
  /** Replaces the org's rules with `rules`, computing the difference under the org's lock. */
  replace(
    orgId: string,
    rules: PolicyRule[],
    actor: string,
    event: (done: { added: PolicyRule[]; removed: PolicyRule[] }) => AuditEvent,
  ): Promise<RuleChange>;
  /** Records an event that changes no rule (a refused attempt). */
  record(event: AuditEvent): Promise<void>;
}
