import { create } from "@bufbuild/protobuf";
import { timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  DataClass as DataClassProto,
  HoldSchema,
  RuleSchema,
  RunReportSchema,
  RunStatus as RunStatusProto,
  type Hold as HoldProto,
  type Rule,
  type RunReport as RunReportProto,
} from "../../gen/airlock/retention/v1/retention_pb.js";
import { invalid } from "../kit/errors.js";
import { formatRetention, type DataClass } from "./durations.js";
import type { Hold, Run, RunStatus } from "./records.js";
import type { EffectiveRule } from "./retention.js";

const classes: Record<DataClass, DataClassProto> = {
  content: DataClassProto.CONTENT,
  metadata: DataClassProto.METADATA,
  receipts: DataClassProto.RECEIPTS,
};

const statuses: Record<RunStatus, RunStatusProto> = {
  running: RunStatusProto.RUNNING,
  succeeded: RunStatusProto.SUCCEEDED,
  failed: RunStatusProto.FAILED,
  interrupted: RunStatusProto.INTERRUPTED,
};

export function dataClassFromProto(c: DataClassProto): DataClass | undefined {
  return (Object.keys(classes) as DataClass[]).find((k) => classes[k] === c);
}

export function ruleToProto(r: EffectiveRule): Rule {
  return create(RuleSchema, {
    orgId: r.orgId,
    dataClass: classes[r.dataClass],
    duration: formatRetention(r.days),
    days: r.days ?? 0,
    isDefault: !r.own,
    updatedBy: r.own?.updatedBy ?? "",
    updateTime: r.own && timestampFromDate(r.own.updatedAt),
  });
}

export function holdToProto(h: Hold): HoldProto {
  return create(HoldSchema, {
    holdId: h.id,
    orgId: h.orgId,
    principalIds: h.principalIds,
    since: h.since && timestampFromDate(h.since),
    until: h.until && timestampFromDate(h.until),
    caseId: h.caseId,
    reason: h.reason,
    placedBy: h.placedBy,
    placeTime: timestampFromDate(h.placedAt),
    releasedBy: h.released?.by ?? "",
    releaseTime: h.released && timestampFromDate(h.released.at),
    releaseReason: h.released?.reason ?? "",
  });
}

export function runToProto(run: Run): RunReportProto {
  return create(RunReportSchema, {
    runId: run.id,
    dryRun: run.dryRun,
    status: statuses[run.status],
    trigger: run.trigger,
    requestedBy: run.requestedBy,
    startTime: timestampFromDate(run.startedAt),
    endTime: run.endedAt && timestampFromDate(run.endedAt),
    durationMs: BigInt(run.endedAt ? run.endedAt.getTime() - run.startedAt.getTime() : 0),
    orgs: (run.report?.orgs ?? []).map((o) => ({
      orgId: o.orgId,
      classes: o.classes.map((c) => ({
        dataClass: classes[c.dataClass],
        duration: c.duration,
        before: c.beforeMs === undefined ? undefined : timestampFromMs(c.beforeMs),
        purged: BigInt(c.purged),
      })),
      held: o.held.map((h) => ({ holdId: h.holdId, caseId: h.caseId, records: BigInt(h.records) })),
      tokensPurged: BigInt(o.tokensPurged),
    })),
    partitionsTruncated: run.report?.partitionsTruncated ?? 0,
    error: run.error,
  });
}

/** ListRuns' page token: where the last page ended. */
export function runsPageToken(run: Run): string {
  return Buffer.from(JSON.stringify([run.startedAt.toISOString(), run.id])).toString("base64url");
}

export function parseRunsPageToken(token: string): { startedAt: Date; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(token, "base64url").toString()) as [string, string];
    const startedAt = new Date(at);
    if (typeof id === "string" && !Number.isNaN(startedAt.getTime())) return { startedAt, id };
  } catch {
    // Falls through to the error below.
  }
  throw invalid("page_token: not a token from a previous ListRuns answer");
}
