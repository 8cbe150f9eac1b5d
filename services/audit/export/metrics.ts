import { Counter, Gauge, type Registry } from "prom-client";

/** What operators watch on export, labelled by sink. */
export class ExportMetrics {
  readonly exported: Counter<"sink">;
  readonly failures: Counter<"sink" | "stage">;
  readonly lagRecords: Gauge<"sink">;
  // Per sink: the time of the oldest record read but not yet delivered; absent when caught up.
  private readonly oldestPending = new Map<string, number | undefined>();

  constructor(registry: Registry) {
    this.exported = new Counter({
      name: "airlock_audit_export_records_total",
      help: "Audit records delivered to a sink and acknowledged by it",
      labelNames: ["sink"],
      registers: [registry],
    });
    this.failures = new Counter({
      name: "airlock_audit_export_failures_total",
      help: "Failed export attempts, by sink and stage (read, deliver, save)",
      labelNames: ["sink", "stage"],
      registers: [registry],
    });
    this.lagRecords = new Gauge({
      name: "airlock_audit_export_lag_records",
      help: "Audit records stored but not yet delivered to a sink",
      labelNames: ["sink"],
      registers: [registry],
    });
    const pending = this.oldestPending;
    new Gauge({
      name: "airlock_audit_export_lag_seconds",
      help: "Age of the oldest audit record a sink is waiting to deliver; 0 when it is caught up",
      labelNames: ["sink"],
      registers: [registry],
      collect() {
        const now = Date.now();
        for (const [sink, time] of pending) {
          this.set({ sink }, time === undefined ? 0 : Math.max(0, now - time) / 1000);
        }
      },
    });
  }

  /** Records the oldest record `sink` still has to deliver, or that it has none. */
  pending(sink: string, oldest: number | undefined): void {
    this.oldestPending.set(sink, oldest);
  }
}
