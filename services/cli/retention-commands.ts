import { toJson } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  DataClass,
  ListHoldsResponseSchema,
  ListRulesResponseSchema,
  ListRunsResponseSchema,
  PlaceHoldResponseSchema,
  ReleaseHoldResponseSchema,
  RetentionService,
  RunReportSchema,
  RunStatus,
  SetRuleResponseSchema,
  type Hold,
  type Rule,
  type RunReport,
} from "../../gen/airlock/retention/v1/retention_pb.js";
import { positiveInt, timeFlag } from "./audit-commands.js";
import { connect, type ClientOptions } from "./client.js";
import { UsageError, type Output } from "./output.js";

const classNames: Record<string, DataClass> = {
  content: DataClass.CONTENT,
  metadata: DataClass.METADATA,
  receipts: DataClass.RECEIPTS,
};

const className = (c: DataClass) => Object.keys(classNames).find((k) => classNames[k] === c) ?? "?";
const statusName = (s: RunStatus) => RunStatus[s].toLowerCase();
const iso = (t: Timestamp | undefined) => (t ? timestampDate(t).toISOString() : "");

/** `airlock retention rules [--org ORG]`: the rules in force, defaults marked. */
export async function retentionRules(opts: ClientOptions, out: Output, flags: { org?: string }) {
  const res = await connect(RetentionService, opts).listRules({ orgId: flags.org ?? "" });
  out.result(toJson(ListRulesResponseSchema, res), () => res.rules.map(ruleLine).join("\n"));
}

/** `airlock retention set ORG CLASS DURATION`. */
export async function retentionSet(opts: ClientOptions, out: Output, args: string[]) {
  const [orgId, name, duration] = args;
  const dataClass = name === undefined ? undefined : classNames[name];
  if (!orgId || !dataClass || !duration)
    throw new UsageError(
      "usage: airlock retention set ORG CLASS DURATION (CLASS: content, metadata or receipts; DURATION: 30d or forever)",
    );
  const res = await connect(RetentionService, opts).setRule({ orgId, dataClass, duration });
  out.result(toJson(SetRuleResponseSchema, res), () => ruleLine(res.rule!));
}

/** `airlock retention hold place|release …`. */
export async function retentionHold(
  opts: ClientOptions,
  out: Output,
  args: string[],
  flags: {
    org?: string;
    case?: string;
    reason?: string;
    principal?: string;
    since?: string;
    until?: string;
  },
) {
  const client = connect(RetentionService, opts);
  const [action, holdId] = args;
  if (action === "place") {
    if (!flags.case || !flags.reason)
      throw new UsageError(
        "usage: airlock retention hold place --case CASE_ID --reason TEXT [--principal ID,ID…] [--since T] [--until T]",
      );
    const res = await client.placeHold({
      orgId: flags.org ?? "",
      caseId: flags.case,
      reason: flags.reason,
      principalIds: flags.principal ? flags.principal.split(",").map((p) => p.trim()) : [],
      since: timeFlag("--since", flags.since),
      until: timeFlag("--until", flags.until),
    });
    return out.result(toJson(PlaceHoldResponseSchema, res), () => holdLine(res.hold!));
  }
  if (action === "release") {
    if (!holdId || !flags.reason)
      throw new UsageError("usage: airlock retention hold release HOLD_ID --reason TEXT");
    const res = await client.releaseHold({ orgId: flags.org ?? "", holdId, reason: flags.reason });
    return out.result(toJson(ReleaseHoldResponseSchema, res), () => holdLine(res.hold!));
  }
  throw new UsageError("usage: airlock retention hold place|release …");
}

/** `airlock retention holds [--all]`. */
export async function retentionHolds(
  opts: ClientOptions,
  out: Output,
  flags: { org?: string; all?: boolean },
) {
  const res = await connect(RetentionService, opts).listHolds({
    orgId: flags.org ?? "",
    includeReleased: flags.all ?? false,
  });
  out.result(toJson(ListHoldsResponseSchema, res), () =>
    res.holds.length ? res.holds.map(holdLine).join("\n") : "no holds",
  );
}

/** `airlock retention run [--dry-run] [--wait]`: a run now, and its report. */
export async function retentionRun(
  opts: ClientOptions,
  out: Output,
  flags: { "dry-run"?: boolean; wait?: boolean },
) {
  const res = await connect(RetentionService, opts).run({
    dryRun: flags["dry-run"] ?? false,
    wait: flags.wait ?? false,
  });
  out.result(toJson(RunReportSchema, res.run!), () => runText(res.run!));
}

/** `airlock retention runs [RUN_ID] [--limit N]`: recent runs, or one run's report. */
export async function retentionRuns(
  opts: ClientOptions,
  out: Output,
  runId: string | undefined,
  flags: { limit?: string },
) {
  const client = connect(RetentionService, opts);
  if (runId) {
    const res = await client.getRun({ runId });
    return out.result(toJson(RunReportSchema, res.run!), () => runText(res.run!));
  }
  const limit = flags.limit === undefined ? 20 : positiveInt("--limit", flags.limit);
  const res = await client.listRuns({ pageSize: Math.min(limit, 200) });
  out.result(toJson(ListRunsResponseSchema, res), () =>
    res.runs.length ? res.runs.map(runLine).join("\n") : "no runs",
  );
}

function ruleLine(r: Rule): string {
  return `${className(r.dataClass).padEnd(9)} ${r.duration.padEnd(8)} ${r.isDefault ? "(default)" : `set by ${r.updatedBy} at ${iso(r.updateTime)}`}`;
}

function holdLine(h: Hold): string {
  const who = h.principalIds.length ? h.principalIds.join(",") : "everyone";
  const span = `${iso(h.since) || "beginning"} .. ${iso(h.until) || "no end"}`;
  const state = h.releaseTime ? `released by ${h.releasedBy}: ${h.releaseReason}` : "in force";
  return `${h.holdId}  case ${h.caseId}  ${who}  ${span}  ${state}`;
}

function runLine(r: RunReport): string {
  return `${r.runId}  ${iso(r.startTime)}  ${statusName(r.status)}${r.dryRun ? " (dry run)" : ""}  ${r.trigger}  ${r.durationMs} ms${r.error ? `  ${r.error}` : ""}`;
}

function runText(r: RunReport): string {
  const lines = [runLine(r), `partitions truncated: ${r.partitionsTruncated}`];
  for (const org of r.orgs) {
    lines.push(`org ${org.orgId}:`);
    for (const c of org.classes)
      lines.push(
        `  ${className(c.dataClass).padEnd(9)} ${c.duration.padEnd(8)} before ${iso(c.before) || "-"}: ${c.purged} ${r.dryRun ? "would be purged" : "purged"}`,
      );
    for (const h of org.held) lines.push(`  hold ${h.holdId} (case ${h.caseId}) kept ${h.records}`);
    lines.push(`  tokens purged: ${org.tokensPurged}`);
  }
  if (r.orgs.length === 0) lines.push("nothing expired");
  return lines.join("\n");
}
