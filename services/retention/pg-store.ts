import type { AuditEvent, AuditEvents } from "../kit/audit-events.js";
import { inTransaction, type Pool } from "../kit/pg.js";
import type { DataClass } from "./durations.js";
import type { Hold, Run, RunReport, RunStatus, StoredRule } from "./records.js";

interface RuleRow {
  org_id: string;
  data_class: DataClass;
  days: number | null;
  updated_by: string;
  updated_at: Date;
}

interface HoldRow {
  id: string;
  org_id: string;
  principal_ids: string[];
  since: Date | null;
  until: Date | null;
  case_id: string;
  reason: string;
  placed_by: string;
  placed_at: Date;
  released_by: string | null;
  released_at: Date | null;
  release_reason: string | null;
}

interface RunRow {
  id: string;
  dry_run: boolean;
  status: RunStatus;
  trigger: Run["trigger"];
  requested_by: string;
  started_at: Date;
  ended_at: Date | null;
  report: RunReport | null;
  error: string;
}

const toRule = (r: RuleRow): StoredRule => ({
  orgId: r.org_id,
  dataClass: r.data_class,
  days: r.days,
  updatedBy: r.updated_by,
  updatedAt: r.updated_at,
});

const toHold = (r: HoldRow): Hold => ({
  id: r.id,
  orgId: r.org_id,
  principalIds: r.principal_ids,
  since: r.since ?? undefined,
  until: r.until ?? undefined,
  caseId: r.case_id,
  reason: r.reason,
  placedBy: r.placed_by,
  placedAt: r.placed_at,
  ...(r.released_at && {
    released: { by: r.released_by ?? "", at: r.released_at, reason: r.release_reason ?? "" },
  }),
});

const toRun = (r: RunRow): Run => ({
  id: r.id,
  dryRun: r.dry_run,
  status: r.status,
  trigger: r.trigger,
  requestedBy: r.requested_by,
  startedAt: r.started_at,
  endedAt: r.ended_at ?? undefined,
  report: r.report ?? undefined,
  error: r.error,
});

/** Rules, holds and runs in the `retention` schema; every change writes its audit event in the same transaction. */
export class PgRetentionStore {
  constructor(
    private readonly pool: Pool,
    private readonly audit: AuditEvents,
  ) {}

  async rules(orgId?: string): Promise<StoredRule[]> {
    const { rows } = await this.pool.query<RuleRow>(
      `SELECT * FROM retention.rules WHERE $1::text IS NULL OR org_id = $1 ORDER BY org_id, data_class`,
      [orgId ?? null],
    );
    return rows.map(toRule);
  }

  /**
   * Sets a rule after `check` accepted the org's rules as they would be; two
   * changes to one org take turns, so together they cannot break a rule set
   * that each alone respects.
   */
  async setRule(
    rule: Omit<StoredRule, "updatedAt">,
    check: (current: StoredRule[]) => void,
    event: AuditEvent,
  ): Promise<StoredRule> {
    return inTransaction(this.pool, async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock(hashtext('airlock.retention.rules.' || $1))", [
        rule.orgId,
      ]);
      const { rows: current } = await tx.query<RuleRow>(
        "SELECT * FROM retention.rules WHERE org_id = $1",
        [rule.orgId],
      );
      check(current.map(toRule));
      const { rows } = await tx.query<RuleRow>(
        `INSERT INTO retention.rules (org_id, data_class, days, updated_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (org_id, data_class)
         DO UPDATE SET days = excluded.days, updated_by = excluded.updated_by, updated_at = now()
         RETURNING *`,
        [rule.orgId, rule.dataClass, rule.days, rule.updatedBy],
      );
      await this.audit.emit(tx, event);
      return toRule(rows[0]!);
    });
  }

  async placeHold(hold: Omit<Hold, "placedAt" | "released">, event: AuditEvent): Promise<Hold> {
    return inTransaction(this.pool, async (tx) => {
      const { rows } = await tx.query<HoldRow>(
        `INSERT INTO retention.holds (id, org_id, principal_ids, since, until, case_id, reason, placed_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
        [
          hold.id,
          hold.orgId,
          hold.principalIds,
          hold.since ?? null,
          hold.until ?? null,
          hold.caseId,
          hold.reason,
          hold.placedBy,
        ],
      );
      await this.audit.emit(tx, event);
      return toHold(rows[0]!);
    });
  }

  /** Releases a hold in force; undefined when the org has no such hold. */
  async releaseHold(
    orgId: string,
    id: string,
    release: { by: string; reason: string },
    event: AuditEvent,
  ): Promise<Hold | undefined> {
    return inTransaction(this.pool, async (tx) => {
      const { rows } = await tx.query<HoldRow>(
        `UPDATE retention.holds SET released_by = $3, released_at = now(), release_reason = $4
         WHERE org_id = $1 AND id = $2 AND released_at IS NULL RETURNING *`,
        [orgId, id, release.by, release.reason],
      );
      if (rows[0]) {
        await this.audit.emit(tx, event);
        return toHold(rows[0]);
      }
      const { rows: existing } = await tx.query<HoldRow>(
        "SELECT * FROM retention.holds WHERE org_id = $1 AND id = $2",
        [orgId, id],
      );
      return existing[0] && toHold(existing[0]);
    });
  }

  /** An org's holds, newest first; every org's holds in force when orgId is undefined. */
  async holds(orgId: string | undefined, includeReleased: boolean): Promise<Hold[]> {
    const { rows } = await this.pool.query<HoldRow>(
      `SELECT * FROM retention.holds
       WHERE ($1::text IS NULL OR org_id = $1) AND ($2 OR released_at IS NULL)
       ORDER BY placed_at DESC, id DESC`,
      [orgId ?? null, includeReleased],
    );
    return rows.map(toHold);
  }

  async startRun(run: Pick<Run, "id" | "dryRun" | "trigger" | "requestedBy" | "startedAt">) {
    await this.pool.query(
      `INSERT INTO retention.runs (id, dry_run, status, trigger, requested_by, started_at)
       VALUES ($1, $2, 'running', $3, $4, $5)`,
      [run.id, run.dryRun, run.trigger, run.requestedBy, run.startedAt],
    );
  }

  /**
   * Marks runs left `running` as interrupted. Called only under the run
   * lock, when no other run can be alive; returns the real (not dry) ones,
   * whose work the caller's run finishes.
   */
  async interruptStaleRuns(): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string; dry_run: boolean }>(
      `UPDATE retention.runs SET status = 'interrupted', ended_at = now(),
         error = 'the process running it stopped before it finished'
       WHERE status = 'running' RETURNING id, dry_run`,
    );
    return rows.filter((r) => !r.dry_run).map((r) => r.id);
  }

  /** Ends a run with its report, and its receipts, in one transaction. */
  async finishRun(
    id: string,
    end: { status: RunStatus; endedAt: Date; report?: RunReport; error?: string },
    receipts: AuditEvent[],
  ): Promise<Run> {
    return inTransaction(this.pool, async (tx) => {
      const { rows } = await tx.query<RunRow>(
        `UPDATE retention.runs SET status = $2, ended_at = $3, report = $4, error = $5
         WHERE id = $1 RETURNING *`,
        [
          id,
          end.status,
          end.endedAt,
          end.report ? JSON.stringify(end.report) : null,
          end.error ?? "",
        ],
      );
      for (const receipt of receipts) await this.audit.emit(tx, receipt);
      return toRun(rows[0]!);
    });
  }

  async getRun(id: string): Promise<Run | undefined> {
    const { rows } = await this.pool.query<RunRow>("SELECT * FROM retention.runs WHERE id = $1", [
      id,
    ]);
    return rows[0] && toRun(rows[0]);
  }

  /** The run in progress, if any. */
  async runningRun(): Promise<Run | undefined> {
    const { rows } = await this.pool.query<RunRow>(
      "SELECT * FROM retention.runs WHERE status = 'running' ORDER BY started_at DESC LIMIT 1",
    );
    return rows[0] && toRun(rows[0]);
  }

  /** Runs newest first, after a (started_at, id) position. */
  async listRuns(limit: number, after?: { startedAt: Date; id: string }): Promise<Run[]> {
    const { rows } = await this.pool.query<RunRow>(
      `SELECT * FROM retention.runs
       WHERE $2::timestamptz IS NULL OR (started_at, id) < ($2, $3)
       ORDER BY started_at DESC, id DESC LIMIT $1`,
      [limit, after?.startedAt ?? null, after?.id ?? ""],
    );
    return rows.map(toRun);
  }
}
