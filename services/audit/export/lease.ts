import { randomUUID } from "node:crypto";
import type { Logger } from "../../kit/log.js";
import type { Queryable } from "../../kit/pg.js";

/**
 * Runs `start` on one replica at a time: the one holding the export lease in
 * Postgres. The holder renews it every third of `leaseMs`; when a renewal
 * fails (lost to another replica after a stall, or Postgres unreachable),
 * the exporters stop, saving what was acknowledged, and the next holder
 * resumes from the saved cursors.
 */
export class ExportLease {
  private readonly holder = randomUUID();
  private timer: NodeJS.Timeout | undefined;
  private running: { stop(): Promise<void> } | undefined;
  private closed = false;

  constructor(
    private readonly db: Queryable,
    private readonly leaseMs: number,
    private readonly start: () => { stop(): Promise<void> },
    private readonly log: Logger,
  ) {}

  async begin(): Promise<void> {
    await this.tick();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running?.stop();
    this.running = undefined;
    await this.db
      .query("DELETE FROM audit.export_lease WHERE holder = $1", [this.holder])
      .catch(() => undefined);
  }

  private async tick(): Promise<void> {
    const held = await this.renew().catch(() => false);
    if (held && !this.running) {
      this.log.info("this replica runs the audit exporters");
      this.running = this.start();
    } else if (!held && this.running) {
      this.log.warn("export lease lost; this replica's exporters stop");
      await this.running.stop();
      this.running = undefined;
    }
    if (!this.closed) {
      this.timer = setTimeout(() => void this.tick(), this.leaseMs / 3);
      this.timer.unref();
    }
  }

  private async renew(): Promise<boolean> {
    const { rows } = await this.db.query(
      `INSERT INTO audit.export_lease (id, holder, expires_at)
       VALUES (1, $1, now() + $2 * interval '1 millisecond')
       ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
       WHERE audit.export_lease.holder = $1 OR audit.export_lease.expires_at < now()
       RETURNING holder`,
      [this.holder, this.leaseMs],
    );
    return rows.length === 1;
  }
}
