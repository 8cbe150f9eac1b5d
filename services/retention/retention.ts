import type { CheckRequest, CheckResponse } from "../../gen/airlock/policy/v1/policy_pb.js";
import { auditEvent } from "../kit/audit-events.js";
import type { Caller, PrincipalCaller } from "../kit/caller.js";
import { denied, invalid, notFound, unauthenticated } from "../kit/errors.js";
import { isId, newId } from "../kit/ids.js";
import type { RetentionConfig } from "./config.js";
import {
  dataClasses,
  formatRetention,
  parseRetention,
  retentionSyntax,
  ruleSetProblem,
  type DataClass,
} from "./durations.js";
import { effectiveRules } from "./plan.js";
import type { PgRetentionStore } from "./pg-store.js";
import type { Hold, Run, StoredRule } from "./records.js";
import type { Runner } from "./runner.js";

export interface RetentionDeps {
  store: PgRetentionStore;
  runner: Runner;
  config: RetentionConfig;
  check(
    request: Pick<CheckRequest, "subject" | "orgId" | "object" | "action">,
  ): Promise<CheckResponse>;
}

/** A rule as callers see it: the org's own, or the default in force. */
export interface EffectiveRule {
  orgId: string;
  dataClass: DataClass;
  days: number | null;
  own: StoredRule | undefined;
}

const maxPrincipals = 100;

/**
 * Retention's rules of access: principals act on their own org only;
 * reading rules, holds and runs needs `read` on `retention`, changing them
 * and running needs `manage`. A run spans every org, but a principal sees
 * only its own org's part of any report.
 */
export class Retention {
  constructor(private readonly deps: RetentionDeps) {}

  async listRules(caller: Caller, requestedOrg: string): Promise<EffectiveRule[]> {
    const { orgId } = await this.authorize(caller, requestedOrg, "read");
    return this.rulesOf(orgId, await this.deps.store.rules(orgId));
  }

  async setRule(
    caller: Caller,
    requestedOrg: string,
    dataClass: DataClass | undefined,
    duration: string,
  ): Promise<EffectiveRule> {
    const { who, orgId } = await this.authorize(caller, requestedOrg, "manage");
    if (!dataClass) throw invalid("data_class: content, metadata or receipts");
    const days = parseRetention(duration);
    if (days === undefined)
      throw invalid(`duration: expected ${retentionSyntax}, got "${duration}"`);
    const stored = await this.deps.store.setRule(
      { orgId, dataClass, days, updatedBy: who.principal.id },
      (current) => {
        const { rules } = effectiveRules(orgId, current, this.deps.config.defaults);
        const problem = ruleSetProblem({ ...rules, [dataClass]: days });
        if (problem) throw invalid(problem);
      },
      auditEvent("retention.rule", "set", orgId, who.principal.id, dataClass, {
        data_class: dataClass,
        duration: formatRetention(days),
      }),
    );
    return { orgId, dataClass, days, own: stored };
  }

  async placeHold(
    caller: Caller,
    requestedOrg: string,
    hold: { principalIds: string[]; since?: Date; until?: Date; caseId: string; reason: string },
  ): Promise<Hold> {
    const { who, orgId } = await this.authorize(caller, requestedOrg, "manage");
    const caseId = hold.caseId.trim();
    const reason = hold.reason.trim();
    if (!caseId || caseId.length > 200) throw invalid("case_id: required, at most 200 characters");
    if (!reason || reason.length > 2000) throw invalid("reason: required, at most 2000 characters");
    const principalIds = [...new Set(hold.principalIds)];
    if (principalIds.length > maxPrincipals)
      throw invalid(`principal_ids: at most ${maxPrincipals}`);
    if (!principalIds.every(isId))
      throw invalid("principal_ids: each a principal id such as usr_… or agt_…");
    if (hold.since && hold.until && hold.until <= hold.since)
      throw invalid("until: must be after since");
    const id = newId("hold");
    return this.deps.store.placeHold(
      {
        id,
        orgId,
        principalIds,
        since: hold.since,
        until: hold.until,
        caseId,
        reason,
        placedBy: who.principal.id,
      },
      auditEvent("retention.hold", "placed", orgId, who.principal.id, id, {
        case_id: caseId,
        reason,
        principal_ids: principalIds,
        since: hold.since?.toISOString() ?? "",
        until: hold.until?.toISOString() ?? "",
      }),
    );
  }

  async releaseHold(
    caller: Caller,
    requestedOrg: string,
    holdId: string,
    reason: string,
  ): Promise<Hold> {
    const { who, orgId } = await this.authorize(caller, requestedOrg, "manage");
    if (!reason.trim() || reason.length > 2000)
      throw invalid("reason: required, at most 2000 characters");
    const hold = await this.deps.store.releaseHold(
      orgId,
      holdId,
      { by: who.principal.id, reason: reason.trim() },
      auditEvent("retention.hold", "released", orgId, who.principal.id, holdId, {
        reason: reason.trim(),
      }),
    );
    if (!hold) throw notFound("no such hold");
    return hold;
  }

  async listHolds(caller: Caller, requestedOrg: string, includeReleased: boolean) {
    const { orgId } = await this.authorize(caller, requestedOrg, "read");
    return this.deps.store.holds(orgId, includeReleased);
  }

  async run(caller: Caller, dryRun: boolean, wait: boolean, signal: AbortSignal) {
    const { who, orgId } = await this.authorize(caller, "", "manage");
    const run = await this.deps.runner.run({
      dryRun,
      trigger: "manual",
      requestedBy: who.principal.id,
      wait,
      signal,
    });
    return ownPart(run, orgId);
  }

  async listRuns(caller: Caller, limit: number, after?: { startedAt: Date; id: string }) {
    const { orgId } = await this.authorize(caller, "", "read");
    return (await this.deps.store.listRuns(limit, after)).map((r) => ownPart(r, orgId));
  }

  async getRun(caller: Caller, runId: string): Promise<Run> {
    const { orgId } = await this.authorize(caller, "", "read");
    const run = await this.deps.store.getRun(runId);
    if (!run) throw notFound("no such run");
    return ownPart(run, orgId);
  }

  private rulesOf(orgId: string, stored: StoredRule[]): EffectiveRule[] {
    const { rules, own } = effectiveRules(orgId, stored, this.deps.config.defaults);
    return dataClasses.map((dataClass) => ({
      orgId,
      dataClass,
      days: rules[dataClass],
      own: own.get(dataClass),
    }));
  }

  private async authorize(
    caller: Caller,
    requestedOrg: string,
    action: "read" | "manage",
  ): Promise<{ who: PrincipalCaller; orgId: string }> {
    if (caller.kind === "anonymous") throw unauthenticated();
    if (caller.kind === "service")
      throw denied("retention is managed by principals; call with a user or agent token");
    const ownOrg = caller.principal.org!.id;
    const orgId = requestedOrg || ownOrg;
    if (orgId !== ownOrg) throw denied("a principal manages only its own org's retention");
    const decision = await this.deps.check({
      subject: caller.principal.id,
      orgId,
      object: "retention",
      action,
    });
    if (!decision.allowed) throw denied(`this needs ${action} on retention (${decision.reason})`);
    return { who: caller, orgId };
  }
}

/** A run as one org may see it: only that org's line of the report. */
function ownPart(run: Run, orgId: string): Run {
  return run.report
    ? { ...run, report: { ...run.report, orgs: run.report.orgs.filter((o) => o.orgId === orgId) } }
    : run;
}
