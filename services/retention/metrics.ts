import { Counter, Gauge, type Registry } from "prom-client";
import type { Run } from "./records.js";

/** What an operator alerts on: runs that fail, and a last success that grows old. */
export function retentionMetrics(registry: Registry) {
  const registers = [registry];
  const runs = new Counter({
    name: "airlock_retention_runs_total",
    help: "Retention runs by outcome (succeeded, failed) and whether they were dry",
    labelNames: ["status", "dry_run"],
    registers,
  });
  const purged = new Counter({
    name: "airlock_retention_purged_records_total",
    help: "Records purged by real runs, by data class (content: records that lost their content)",
    labelNames: ["data_class"],
    registers,
  });
  const lastSuccess = new Gauge({
    name: "airlock_retention_last_success_timestamp_seconds",
    help: "When the last real run that succeeded ended (0: none in this process)",
    registers,
  });
  return {
    finished(run: Run): void {
      runs.inc({ status: run.status, dry_run: String(run.dryRun) });
      if (run.dryRun || run.status !== "succeeded") return;
      lastSuccess.set((run.endedAt ?? new Date()).getTime() / 1000);
      for (const org of run.report?.orgs ?? [])
        for (const c of org.classes) purged.inc({ data_class: c.dataClass }, c.purged);
    },
  };
}

export type RetentionMetrics = ReturnType<typeof retentionMetrics>;
