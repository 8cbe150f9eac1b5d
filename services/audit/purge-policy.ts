import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { PurgeCutoffs, PurgeRequest } from "../../gen/airlock/audit/v1/audit_pb.js";
import { invalid } from "../kit/errors.js";

/** Before which time each class of an org's records is expired; undefined: kept forever. */
export interface Cutoffs {
  contentBeforeMs?: number;
  metadataBeforeMs?: number;
  receiptsBeforeMs?: number;
}

/**
 * A legal hold: the org's records in [sinceMs, untilMs) whose actor is one
 * of `principalIds` (any actor when empty) stay. An unset bound is open, as
 * retention's holds are ("until: unset, no end").
 */
export interface Hold {
  holdId: string;
  orgId: string;
  principalIds: string[];
  sinceMs?: number;
  untilMs?: number;
}

/** A retention run as Purge carries it out. */
export interface PurgePolicy {
  runId: string;
  /** Cutoffs of the orgs with rules of their own. */
  orgs: ReadonlyMap<string, Cutoffs>;
  /** Cutoffs of every org not in `orgs`. */
  defaults: Cutoffs;
  receiptKinds: string[];
  holds: Hold[];
  dryRun: boolean;
}

const runIdPattern = /^[\x21-\x7e]{1,200}$/;

/** Checks a Purge request and puts it in the form the purger works from. */
export function purgePolicy(req: PurgeRequest): PurgePolicy {
  // A dry run deletes nothing, so nothing needs to name it.
  if (!req.dryRun && !req.runId)
    throw invalid("run_id: required: purged ranges name the run whose receipt accounts for them");
  if (req.runId && !runIdPattern.test(req.runId))
    throw invalid("run_id: expected 1-200 printable characters");
  const orgs = new Map<string, Cutoffs>();
  req.orgs.forEach((c, i) => {
    if (!c.orgId) throw invalid(`orgs[${i}].org_id: required`);
    if (orgs.has(c.orgId))
      throw invalid(`orgs[${i}].org_id: ${c.orgId} is listed twice; an org has one set of cutoffs`);
    orgs.set(c.orgId, cutoffs(c));
  });
  if (req.defaults?.orgId)
    throw invalid(
      "defaults.org_id: must be empty: the defaults apply to every org not listed in orgs",
    );
  req.receiptKinds.forEach((kind, i) => {
    if (!kind) throw invalid(`receipt_kinds[${i}]: empty`);
  });
  const holdIds = new Set<string>();
  const holds = req.holds.map((h, i): Hold => {
    const where = `holds[${i}]`;
    if (!h.holdId) throw invalid(`${where}.hold_id: required`);
    if (holdIds.has(h.holdId)) throw invalid(`${where}.hold_id: ${h.holdId} is listed twice`);
    holdIds.add(h.holdId);
    if (!h.orgId) throw invalid(`${where}.org_id: required`);
    if (h.principalIds.some((p) => !p)) throw invalid(`${where}.principal_ids: an id is empty`);
    const sinceMs = ms(h.since);
    const untilMs = ms(h.until);
    if (sinceMs !== undefined && untilMs !== undefined && untilMs <= sinceMs) {
      throw invalid(
        `${where} (${h.holdId}): until ${iso(untilMs)} is not after since ${iso(sinceMs)}`,
      );
    }
    return {
      holdId: h.holdId,
      orgId: h.orgId,
      principalIds: [...h.principalIds],
      sinceMs,
      untilMs,
    };
  });
  return {
    runId: req.runId,
    orgs,
    defaults: req.defaults ? cutoffs(req.defaults) : {},
    receiptKinds: [...new Set(req.receiptKinds)],
    holds,
    dryRun: req.dryRun,
  };
}

/** The latest cutoff of any class and org: nothing at or after it is expired. */
export function latestCutoffMs(policy: PurgePolicy): number | undefined {
  const all = [policy.defaults, ...policy.orgs.values()].flatMap((c) =>
    [c.contentBeforeMs, c.metadataBeforeMs, c.receiptsBeforeMs].filter(
      (t): t is number => t !== undefined,
    ),
  );
  return all.length === 0 ? undefined : Math.max(...all);
}

function cutoffs(c: PurgeCutoffs): Cutoffs {
  return {
    contentBeforeMs: ms(c.contentBefore),
    metadataBeforeMs: ms(c.metadataBefore),
    receiptsBeforeMs: ms(c.receiptsBefore),
  };
}

function ms(t: Timestamp | undefined): number | undefined {
  return t ? timestampDate(t).getTime() : undefined;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
