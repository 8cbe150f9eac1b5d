import type { AuditEvent, AuditEvents } from "../kit/audit-events.js";
import { conflict } from "../kit/errors.js";
import { inTransaction, type Pool, type Queryable } from "../kit/pg.js";
import type {
  IdentityStore,
  NewPrincipal,
  NewToken,
  OrgRecord,
  PrincipalRecord,
  TokenCursor,
  TokenRecord,
} from "./store.js";

const uniqueViolation = "23505";

const principalColumns = `p.id, p.kind, p.display_name, p.email, p.owner_id, p.groups, p.roles,
  p.workspace, p.repositories, p.created_at, o.id AS org_id, o.name AS org_name`;
const principalFrom = `identity.principals p JOIN identity.orgs o ON o.id = p.org_id`;
const tokenColumns = `t.id, t.principal_id, t.org_id, t.kind, t.name, t.secret_sha256, t.scopes,
  t.created_by, t.created_at, t.expires_at, t.revoked_at`;

interface PrincipalRow {
  id: string;
  kind: PrincipalRecord["kind"];
  display_name: string;
  email: string | null;
  owner_id: string | null;
  groups: string[];
  roles: string[];
  workspace: string | null;
  repositories: string[];
  created_at: Date;
  org_id: string;
  org_name: string;
}

interface TokenRow {
  id: string;
  principal_id: string;
  org_id: string;
  kind: TokenRecord["kind"];
  name: string;
  secret_sha256: Buffer;
  scopes: string[];
  created_by: string;
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
}

export class PgIdentityStore implements IdentityStore {
  constructor(
    private readonly pool: Pool,
    private readonly audit: AuditEvents,
  ) {}

  async bootstrap(
    org: OrgRecord,
    admin: NewPrincipal,
    token: NewToken,
    events: AuditEvent[],
  ): Promise<boolean> {
    return inTransaction(this.pool, async (tx) => {
      // Two bootstraps racing: the second waits here, then sees the first one's admin.
      await tx.query("LOCK TABLE identity.principals IN EXCLUSIVE MODE");
      const { rows } = await tx.query("SELECT 1 FROM identity.principals LIMIT 1");
      if (rows.length > 0) return false;
      await tx.query("INSERT INTO identity.orgs (id, name) VALUES ($1, $2)", [org.id, org.name]);
      await insertPrincipal(tx, admin);
      await insertToken(tx, token);
      for (const event of events) await this.audit.emit(tx, event);
      return true;
    });
  }

  async findOrgByName(name: string): Promise<OrgRecord | undefined> {
    const { rows } = await this.pool.query<OrgRecord>(
      "SELECT id, name FROM identity.orgs WHERE name = $1",
      [name],
    );
    return rows[0];
  }

  async getPrincipal(id: string): Promise<PrincipalRecord | undefined> {
    return this.onePrincipal("p.id = $1", [id]);
  }

  async findUserByOidc(issuer: string, subject: string): Promise<PrincipalRecord | undefined> {
    return this.onePrincipal("p.oidc_issuer = $1 AND p.oidc_subject = $2", [issuer, subject]);
  }

  async findUnlinkedUser(orgId: string, email: string): Promise<PrincipalRecord | undefined> {
    return this.onePrincipal(
      "p.org_id = $1 AND p.kind = 'user' AND lower(p.email) = lower($2) AND p.oidc_subject IS NULL",
      [orgId, email],
    );
  }

  async recordSignIn(
    id: string,
    oidc: { issuer: string; subject: string },
    groups: string[],
    event?: AuditEvent,
  ): Promise<void> {
    await inTransaction(this.pool, async (tx) => {
      await tx.query(
        `UPDATE identity.principals SET oidc_issuer = $2, oidc_subject = $3, groups = $4 WHERE id = $1`,
        [id, oidc.issuer, oidc.subject, groups],
      );
      if (event) await this.audit.emit(tx, event);
    });
  }

  async createPrincipal(principal: NewPrincipal, event: AuditEvent): Promise<PrincipalRecord> {
    await inTransaction(this.pool, async (tx) => {
      await insertPrincipal(tx, principal);
      await this.audit.emit(tx, event);
    }).catch((err: unknown) => {
      if ((err as { code?: string }).code === uniqueViolation) {
        throw conflict("another user of this org already has this email address");
      }
      throw err;
    });
    return (await this.getPrincipal(principal.id))!;
  }

  async createToken(token: NewToken, event: AuditEvent): Promise<TokenRecord> {
    return inTransaction(this.pool, async (tx) => {
      const row = await insertToken(tx, token);
      await this.audit.emit(tx, event);
      return row;
    });
  }

  async getToken(id: string): Promise<TokenRecord | undefined> {
    const { rows } = await this.pool.query<TokenRow>(
      `SELECT ${tokenColumns} FROM identity.tokens t WHERE t.id = $1`,
      [id],
    );
    return rows[0] && toToken(rows[0]);
  }

  async findTokenForAuth(
    id: string,
  ): Promise<{ token: TokenRecord; principal: PrincipalRecord } | undefined> {
    const { rows } = await this.pool.query<TokenRow & { p: PrincipalRow }>(
      `SELECT ${tokenColumns}, row_to_json(x) AS p
       FROM identity.tokens t
       JOIN LATERAL (SELECT ${principalColumns} FROM ${principalFrom} WHERE p.id = t.principal_id) x ON true
       WHERE t.id = $1`,
      [id],
    );
    const row = rows[0];
    if (!row) return undefined;
    // row_to_json turns timestamps into strings; bring the one we use back to a Date.
    const p = { ...row.p, created_at: new Date(row.p.created_at) };
    return { token: toToken(row), principal: toPrincipal(p) };
  }

  async listTokens(query: {
    principalId: string;
    includeInactive: boolean;
    now: Date;
    limit: number;
    after?: TokenCursor;
  }): Promise<TokenRecord[]> {
    const { rows } = await this.pool.query<TokenRow>(
      `SELECT ${tokenColumns} FROM identity.tokens t
       WHERE t.principal_id = $1
         AND ($2 OR (t.revoked_at IS NULL AND t.expires_at > $3))
         AND ($4::timestamptz IS NULL OR (t.created_at, t.id) < ($4, $5))
       ORDER BY t.created_at DESC, t.id DESC
       LIMIT $6`,
      [
        query.principalId,
        query.includeInactive,
        query.now,
        query.after?.createdAt ?? null,
        query.after?.id ?? "",
        query.limit,
      ],
    );
    return rows.map(toToken);
  }

  async revokeToken(id: string, now: Date, event: AuditEvent): Promise<TokenRecord | undefined> {
    return inTransaction(this.pool, async (tx) => {
      const { rows } = await tx.query<TokenRow>(
        `UPDATE identity.tokens t SET revoked_at = $2 WHERE t.id = $1 AND t.revoked_at IS NULL RETURNING ${tokenColumns}`,
        [id, now],
      );
      if (rows[0]) {
        await this.audit.emit(tx, event);
        return toToken(rows[0]);
      }
      const { rows: existing } = await tx.query<TokenRow>(
        `SELECT ${tokenColumns} FROM identity.tokens t WHERE t.id = $1`,
        [id],
      );
      return existing[0] && toToken(existing[0]);
    });
  }

  async purgeTokens(before: Date, dryRun: boolean): Promise<{ orgId: string; tokens: number }[]> {
    const dead = "(revoked_at < $1 OR expires_at < $1)";
    const { rows } = await this.pool.query<{ org_id: string; n: string }>(
      dryRun
        ? `SELECT org_id, count(*) AS n FROM identity.tokens WHERE ${dead} GROUP BY org_id ORDER BY org_id`
        : `WITH gone AS (DELETE FROM identity.tokens WHERE ${dead} RETURNING org_id)
           SELECT org_id, count(*) AS n FROM gone GROUP BY org_id ORDER BY org_id`,
      [before],
    );
    return rows.map((r) => ({ orgId: r.org_id, tokens: Number(r.n) }));
  }

  private async onePrincipal(
    where: string,
    params: unknown[],
  ): Promise<PrincipalRecord | undefined> {
    const { rows } = await this.pool.query<PrincipalRow>(
      `SELECT ${principalColumns} FROM ${principalFrom} WHERE ${where}`,
      params,
    );
    return rows[0] && toPrincipal(rows[0]);
  }
}

async function insertPrincipal(tx: Queryable, p: NewPrincipal): Promise<void> {
  await tx.query(
    `INSERT INTO identity.principals
       (id, org_id, kind, display_name, email, oidc_issuer, oidc_subject, owner_id, groups, roles, workspace, repositories)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [
      p.id,
      p.orgId,
      p.kind,
      p.displayName,
      p.email,
      p.oidc?.issuer ?? null,
      p.oidc?.subject ?? null,
      p.ownerId,
      p.groups,
      p.roles,
      p.workspace,
      p.repositories,
    ],
  );
}

async function insertToken(tx: Queryable, t: NewToken): Promise<TokenRecord> {
  const { rows } = await tx.query<TokenRow>(
    `INSERT INTO identity.tokens AS t (id, principal_id, org_id, kind, name, secret_sha256, scopes, created_by, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${tokenColumns}`,
    [
      t.id,
      t.principalId,
      t.orgId,
      t.kind,
      t.name,
      t.secretSha256,
      t.scopes,
      t.createdBy,
      t.expiresAt,
    ],
  );
  return toToken(rows[0]!);
}

function toPrincipal(r: PrincipalRow): PrincipalRecord {
  return {
    id: r.id,
    org: { id: r.org_id, name: r.org_name },
    kind: r.kind,
    displayName: r.display_name,
    email: r.email,
    ownerId: r.owner_id,
    groups: r.groups,
    roles: r.roles,
    workspace: r.workspace,
    repositories: r.repositories,
    createdAt: r.created_at,
  };
}

function toToken(r: TokenRow): TokenRecord {
  return {
    id: r.id,
    principalId: r.principal_id,
    orgId: r.org_id,
    kind: r.kind,
    name: r.name,
    secretSha256: r.secret_sha256,
    scopes: r.scopes,
    createdBy: r.created_by,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
  };
}
