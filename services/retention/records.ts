import type { DataClass, Days } from "./durations.js";

/** A rule an org set for itself. */
export interface StoredRule {
  orgId: string;
  dataClass: DataClass;
  days: Days;
  updatedBy: string;
  updatedAt: Date;
}

/** A legal hold; open ends are undefined. */
export interface Hold {
  id: string;
  orgId: string;
  principalIds: string[];
  since: Date | undefined;
  until: Date | undefined;
  caseId: string;
  reason: string;
  placedBy: string;
  placedAt: Date;
  released?: { by: string; at: Date; reason: string };
}

export type RunStatus = "running" | "succeeded" | "failed" | "interrupted";

/** One data class's share of a run in one org. */
export interface ClassReport {
  dataClass: DataClass;
  duration: string;
  /** Records before this time were expired; undefined for forever. */
  beforeMs: number | undefined;
  purged: number;
}

/** A run's work in one org. */
export interface OrgReport {
  orgId: string;
  classes: ClassReport[];
  held: { holdId: string; caseId: string; records: number }[];
  tokensPurged: number;
}

/** What a run did, stored as JSON with the run. */
export interface RunReport {
  orgs: OrgReport[];
  partitionsTruncated: number;
  /** Earlier runs that stopped midway, whose work this run finished. */
  resumes: string[];
}

export interface Run {
  id: string;
  dryRun: boolean;
  status: RunStatus;
  trigger: "schedule" | "manual";
  requestedBy: string;
  startedAt: Date;
  endedAt: Date | undefined;
  report: RunReport | undefined;
  error: string;
}
