import { uuidv7 } from "./ids.js";
import type { Queryable } from "./pg.js";

/**
 * A change worth an audit record (a token created or revoked, a principal
 * created). Never carries secrets or prompt text.
 */
export interface AuditEvent {
  /** Record kind, e.g. `identity.token`. */
  kind: string;
  /** What happened within the kind, e.g. `created`, `revoked`. */
  action: string;
  orgId: string;
  /** Who did it: a principal id, `service:<name>` or `anonymous`. */
  actor: string;
  /** What it was done to: a principal or token id. */
  subject: string;
  attributes: Record<string, string | number | boolean | readonly string[]>;
}

/** An event; `attributes` empty unless given. */
export function auditEvent(
  kind: string,
  action: string,
  orgId: string,
  actor: string,
  subject: string,
  attributes: AuditEvent["attributes"] = {},
): AuditEvent {
  return { kind, action, orgId, actor, subject, attributes };
}

/**
 * Where services hand audit events. The identity service writes them in the
 * same transaction as the change itself (an outbox), so a change without its
 * record cannot exist; the audit service ships the outbox into the audit log.
 */
export interface AuditEvents {
  emit(tx: Queryable, event: AuditEvent): Promise<void>;
}

/** Keeps events in `<schema>.audit_outbox`, which each service's migrations create. */
export class OutboxAuditEvents implements AuditEvents {
  constructor(private readonly schema: string) {}

  async emit(tx: Queryable, event: AuditEvent): Promise<void> {
    await tx.query(
      `INSERT INTO ${this.schema}.audit_outbox (id, kind, action, org_id, actor, subject, attributes)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        uuidv7(),
        event.kind,
        event.action,
        event.orgId,
        event.actor,
        event.subject,
        JSON.stringify(event.attributes),
      ],
    );
  }
}
