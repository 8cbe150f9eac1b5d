import type { AuditEvent } from "../kit/audit-events.js";
import {
  cutoffMs,
  dataClasses,
  formatRetention,
  type DataClass,
  type RuleSet,
} from "./durations.js";
import type { Hold, OrgReport, RunReport, StoredRule } from "./records.js";

/**
 * Record kinds kept under the receipts rule: what retention itself wrote,
 * the evidence of why anything was (or was not) deleted.
 */
export const receiptKinds = ["retention.run", "retention.hold", "retention.rule"];

/** The rules of one org: its own where it set them, the defaults elsewhere. */
export function effectiveRules(
  orgId: string,
  stored: readonly StoredRule[],
  defaults: RuleSet,
): { rules: RuleSet; own: Map<DataClass, StoredRule> } {
  const own = new Map(stored.filter((r) => r.orgId === orgId).map((r) => [r.dataClass, r]));
  const rules = { ...defaults };
  for (const [dataClass, rule] of own) rules[dataClass] = rule.days;
  return { rules, own };
}

/** Expiry times of one org's classes; undefined keeps the class. */
export type Cutoffs = Record<DataClass, number | undefined>;

/** What a run asks audit to purge, and the rules it applied. */
export interface PurgePlan {
  nowMs: number;
  /** Orgs with rules of their own. */
  orgs: Map<string, { rules: RuleSet; cutoffs: Cutoffs }>;
  defaults: { rules: RuleSet; cutoffs: Cutoffs };
  holds: Hold[];
}

const cutoffsOf = (rules: RuleSet, nowMs: number): Cutoffs => ({
  content: cutoffMs(rules.content, nowMs),
  metadata: cutoffMs(rules.metadata, nowMs),
  receipts: cutoffMs(rules.receipts, nowMs),
});

export function purgePlan(input: {
  nowMs: number;
  defaults: RuleSet;
  stored: readonly StoredRule[];
  holds: Hold[];
}): PurgePlan {
  const orgs = new Map<string, { rules: RuleSet; cutoffs: Cutoffs }>();
  for (const orgId of new Set(input.stored.map((r) => r.orgId))) {
    const { rules } = effectiveRules(orgId, input.stored, input.defaults);
    orgs.set(orgId, { rules, cutoffs: cutoffsOf(rules, input.nowMs) });
  }
  return {
    nowMs: input.nowMs,
    orgs,
    defaults: { rules: input.defaults, cutoffs: cutoffsOf(input.defaults, input.nowMs) },
    holds: input.holds,
  };
}

/** What audit and identity answered, per org. */
export interface PurgeOutcome {
  orgs: {
    orgId: string;
    purged: Record<DataClass, number>;
    held: { holdId: string; records: number }[];
  }[];
  partitionsTruncated: number;
  tokens: { orgId: string; tokens: number }[];
}

/** The run's report: per org that had anything expired or held, each class with the rule applied. */
export function runReport(plan: PurgePlan, outcome: PurgeOutcome, resumes: string[]): RunReport {
  const orgIds = [
    ...new Set([...outcome.orgs.map((o) => o.orgId), ...outcome.tokens.map((t) => t.orgId)]),
  ].sort();
  const caseOf = new Map(plan.holds.map((h) => [h.id, h.caseId]));
  const orgs = orgIds.map((orgId): OrgReport => {
    const found = outcome.orgs.find((o) => o.orgId === orgId);
    const { rules, cutoffs } = plan.orgs.get(orgId) ?? plan.defaults;
    return {
      orgId,
      classes: dataClasses.map((dataClass) => ({
        dataClass,
        duration: formatRetention(rules[dataClass]),
        beforeMs: cutoffs[dataClass],
        purged: found?.purged[dataClass] ?? 0,
      })),
      held: (found?.held ?? []).map((h) => ({ ...h, caseId: caseOf.get(h.holdId) ?? "" })),
      tokensPurged: outcome.tokens.find((t) => t.orgId === orgId)?.tokens ?? 0,
    };
  });
  return { orgs, partitionsTruncated: outcome.partitionsTruncated, resumes };
}

/**
 * One `retention.run` receipt per org the run touched, in that org's own
 * audit log: the rules applied, the cutoffs, what each class lost, which
 * holds kept what, and the runs it finished.
 */
export function receipts(
  run: { id: string; trigger: string; requestedBy: string; durationMs: number },
  report: RunReport,
): AuditEvent[] {
  return report.orgs.map((org) => {
    const attributes: AuditEvent["attributes"] = {
      run_id: run.id,
      trigger: run.trigger,
      duration_ms: run.durationMs,
      partitions_truncated: report.partitionsTruncated,
      tokens_purged: org.tokensPurged,
      holds: org.held.map((h) => `${h.holdId} ${h.caseId}: ${h.records}`),
      resumes: report.resumes,
    };
    for (const c of org.classes) {
      attributes[`${c.dataClass}_rule`] = c.duration;
      attributes[`${c.dataClass}_before`] =
        c.beforeMs === undefined ? "" : new Date(c.beforeMs).toISOString();
      attributes[`${c.dataClass}_purged`] = c.purged;
    }
    return {
      kind: "retention.run",
      action: "purge",
      orgId: org.orgId,
      actor: run.requestedBy,
      subject: run.id,
      attributes,
    };
  });
}
