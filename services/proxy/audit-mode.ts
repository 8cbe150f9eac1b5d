import { Counter, type Registry } from "prom-client";
import type { Logger } from "../kit/log.js";
import type { LlmRecord, Recorder } from "./records.js";

/** `strict`: a call whose request record cannot be written is refused; `best-effort`: it goes on. */
export type AuditMode = "strict" | "best-effort";

export interface AuditModeRecorderOptions {
  recorder: Recorder;
  mode: AuditMode;
  log: Logger;
  registry: Registry;
}

/**
 * Applies the audit mode to records that cannot be written. In `strict`
 * mode a request record's failure reaches the proxy, which refuses the call
 * (fail closed, like an audit device that cannot log). Every other lost
 * record (a response record, whose call has already gone out, and in
 * `best-effort` mode any record) is counted and logged, by id and never
 * with its content, and the call goes on.
 */
export class AuditModeRecorder implements Recorder {
  private readonly dropped: Counter<"kind">;

  constructor(private readonly options: AuditModeRecorderOptions) {
    this.dropped = new Counter({
      name: "airlock_audit_records_dropped_total",
      help: "Records of calls that went ahead but could not be written to the spool",
      labelNames: ["kind"],
      registers: [options.registry],
    });
  }

  async record(record: LlmRecord): Promise<void> {
    try {
      await this.options.recorder.record(record);
    } catch (err) {
      if (this.options.mode === "strict" && record.kind === "llm.request") throw err;
      this.dropped.inc({ kind: record.kind });
      this.options.log.error(
        {
          err: (err as Error).message,
          id: record.id,
          kind: record.kind,
          orgId: record.orgId,
          principalId: record.principalId,
        },
        "audit record lost: the spool could not take it",
      );
    }
  }

  close(): Promise<void> {
    return this.options.recorder.close();
  }
}
