import { Counter, Gauge, type Registry } from "prom-client";

export type ShipperMetrics = ReturnType<typeof shipperMetrics>;

/** The audit shipper's metrics: what the spool holds, what went to audit, what could not. */
export function shipperMetrics(
  registry: Registry,
  read: { spoolBytes(): number; pending(): { bytes: number; records: number } },
) {
  const registers = [registry];
  const gauge = (name: string, help: string, value: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(value());
      },
    });
  gauge("airlock_audit_spool_bytes", "Bytes in spool segments on disk", read.spoolBytes);
  gauge(
    "airlock_audit_spool_pending_bytes",
    "Spooled bytes not yet acknowledged by audit",
    () => read.pending().bytes,
  );
  gauge(
    "airlock_audit_spool_pending_records",
    "Spooled records not yet acknowledged by audit",
    () => read.pending().records,
  );
  return {
    shipped: new Counter({
      name: "airlock_audit_records_shipped_total",
      help: "Spooled records acknowledged by audit",
      registers,
    }),
    failed: new Counter({
      name: "airlock_audit_ship_failures_total",
      help: "Append calls (or spool reads) that failed; their records wait in the spool",
      registers,
    }),
    rejected: new Counter({
      name: "airlock_audit_records_rejected_total",
      help: "Spooled records set aside in the rejected file: unreadable, or refused by audit for what they hold",
      labelNames: ["reason"] as const,
      registers,
    }),
  };
}
