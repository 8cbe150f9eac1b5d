import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient, type Client } from "@connectrpc/connect";
import { AuditService, RecordSchema } from "../../gen/airlock/audit/v1/audit_pb.js";
import type { Logger } from "./log.js";
import type { Pool } from "./pg.js";
import type { Platform } from "./service-module.js";

interface OutboxRow {
  id: string;
  kind: string;
  action: string;
  org_id: string;
  actor: string;
  subject: string;
  attributes: JsonObject;
  occurred_at: Date;
}

/** Events with no org (none today, but the column allows "") go to a chain no principal can read. */
const noOrgChain = "_system";

export interface OutboxShipperOptions {
  batchSize: number;
  /** How often an empty outbox is looked at again. */
  pollMs: number;
  /** The longest wait between retries while audit is unreachable. */
  maxBackoffMs: number;
}

/**
 * Moves a service's audit outbox (`<schema>.audit_outbox`, written in the
 * same transaction as each change) into the audit log: a batch is appended,
 * and its rows are deleted only after audit acknowledged them. Append is
 * idempotent on the outbox row id, so a crash between the two only sends a
 * batch twice. While audit is down, events wait in the outbox.
 */
export class OutboxShipper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private failures = 0;

  constructor(
    private readonly pool: Pool,
    private readonly schema: string,
    private readonly audit: Client<typeof AuditService>,
    private readonly log: Logger,
    private readonly options: OutboxShipperOptions = {
      batchSize: 500,
      pollMs: 500,
      maxBackoffMs: 10_000,
    },
  ) {}

  start(): void {
    this.schedule(this.options.pollMs);
  }

  /** Stops polling after shipping what the outbox holds now, if audit takes it. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.shipAll().catch(() => undefined);
  }

  /** Ships until the outbox is empty; returns the number of events shipped. */
  async shipAll(): Promise<number> {
    let total = 0;
    for (;;) {
      const shipped = await this.shipBatch();
      total += shipped;
      if (shipped < this.options.batchSize) return total;
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.shipAll()
        .then(() => {
          if (this.failures > 0)
            this.log.info({ outbox: this.schema }, "audit outbox shipping again");
          this.failures = 0;
          this.schedule(this.options.pollMs);
        })
        .catch((err: unknown) => {
          this.failures++;
          const wait = Math.min(
            this.options.pollMs * 2 ** this.failures,
            this.options.maxBackoffMs,
          );
          // The first failure at start-up is expected while the audit service comes up.
          if (this.failures > 1)
            this.log.warn(
              { err, outbox: this.schema, retryInMs: wait },
              "audit outbox not shipped; events wait",
            );
          this.schedule(wait);
        });
    }, ms);
    this.timer.unref();
  }

  private async shipBatch(): Promise<number> {
    const { rows } = await this.pool.query<OutboxRow>(
      `SELECT id, kind, action, org_id, actor, subject, attributes, occurred_at
       FROM ${this.schema}.audit_outbox ORDER BY occurred_at, id LIMIT $1`,
      [this.options.batchSize],
    );
    if (rows.length === 0) return 0;
    await this.audit.append({
      records: rows.map((r) =>
        create(RecordSchema, {
          id: r.id,
          kind: r.kind,
          time: timestampFromDate(r.occurred_at),
          orgId: r.org_id || noOrgChain,
          actor: r.actor,
          actorKind: r.actor.startsWith("service:") ? "service" : "",
          action: r.action,
          subject: r.subject,
          status: "ok",
          attributes: r.attributes,
        }),
      ),
    });
    await this.pool.query(`DELETE FROM ${this.schema}.audit_outbox WHERE id = ANY($1)`, [
      rows.map((r) => r.id),
    ]);
    return rows.length;
  }
}

/**
 * Ships `<schema>.audit_outbox` to the audit service for the life of the
 * process. A process that cannot reach audit (split mode without
 * AIRLOCK_AUDIT_URL) keeps its events in the outbox, says so once, and
 * ships them when it is started with the address.
 */
export function shipOutbox(platform: Platform, schema: string, log: Logger): void {
  if (!platform.hasPeer("audit")) {
    log.warn(
      { outbox: schema },
      "AIRLOCK_AUDIT_URL is not set: audit events are kept in the outbox until it is",
    );
    return;
  }
  const shipper = new OutboxShipper(
    platform.pool,
    schema,
    createClient(AuditService, platform.peer("audit")),
    log,
  );
  shipper.start();
  platform.lifecycle.onStop(`${schema} audit outbox`, () => shipper.stop());
}
