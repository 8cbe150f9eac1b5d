import { ConfigError } from "../kit/config.js";
import type { Pool } from "../kit/pg.js";

/** Tables that hold evidence: the serving role may add to them, never change or delete. */
const evidence = [
  "records",
  "contents",
  "checkpoints",
  "signing_keys",
  "purged_ranges",
  "content_purges",
];

/**
 * Gives the serving role (DATABASE_URL's) what serving needs and no more:
 * read everything; append records, contents, checkpoints and signing keys;
 * move chain heads; keep export cursors and the export lease. Deleting,
 * updating or truncating evidence stays with the owner, which only Purge
 * uses. Privileges on the partitioned tables cover their partitions, since
 * rows are reached through the parent. Run by the owner after migrations.
 */
export async function restrictServingRole(owner: Pool, serving: Pool): Promise<void> {
  const role = await currentRole(serving);
  if (role === (await currentRole(owner)))
    throw new ConfigError(
      "AIRLOCK_AUDIT_OWNER_DATABASE_URL connects as the same role as DATABASE_URL: give it the role that owns the audit schema",
    );
  const { rows } = await owner.query<{ owner: string }>(
    "SELECT tableowner AS owner FROM pg_tables WHERE schemaname = 'audit' AND tablename = 'records'",
  );
  if (rows[0]?.owner === role)
    throw new ConfigError(
      `DATABASE_URL's role ${role} owns the audit tables, so no grant can keep it from deleting: make AIRLOCK_AUDIT_OWNER_DATABASE_URL's role their owner (ALTER TABLE … OWNER TO)`,
    );
  const to = `"${role.replaceAll('"', '""')}"`;
  const tables = (names: string[]) => names.map((n) => `audit.${n}`).join(", ");
  for (const statement of [
    `GRANT USAGE ON SCHEMA audit TO ${to}`,
    `GRANT SELECT ON ALL TABLES IN SCHEMA audit TO ${to}`,
    `REVOKE UPDATE, DELETE, TRUNCATE ON ${tables(evidence)} FROM ${to}`,
    `GRANT INSERT ON ${tables(["records", "contents", "checkpoints", "signing_keys"])} TO ${to}`,
    `GRANT INSERT, UPDATE ON ${tables(["chains", "export_cursors"])} TO ${to}`,
    `GRANT INSERT, UPDATE, DELETE ON audit.export_lease TO ${to}`,
  ])
    await owner.query(statement);
}

async function currentRole(pool: Pool): Promise<string> {
  const { rows } = await pool.query<{ role: string }>("SELECT current_user AS role");
  return rows[0]!.role;
}
