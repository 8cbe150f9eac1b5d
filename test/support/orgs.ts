import pg from "pg";
import { newId } from "../../services/kit/ids.js";
import { mintToken } from "../../services/identity/tokens.js";

/**
 * A second org with an admin and an admin token, written straight into the
 * database: Airlock creates only the first org itself (bootstrap), and the
 * isolation tests need another one.
 */
export async function insertOrg(
  databaseUrl: string,
  name: string,
): Promise<{ orgId: string; adminId: string; token: string }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const orgId = newId("org");
  const adminId = newId("usr");
  const minted = mintToken();
  await client.query("INSERT INTO identity.orgs (id, name) VALUES ($1, $2)", [orgId, name]);
  await client.query(
    `INSERT INTO identity.principals (id, org_id, kind, display_name, email, roles) VALUES ($1, $2, 'user', $3, $3, '{org-admin}')`,
    [adminId, orgId, `admin@${name}.test`],
  );
  await client.query(
    `INSERT INTO identity.tokens (id, principal_id, org_id, kind, name, secret_sha256, scopes, created_by, expires_at)
     VALUES ($1, $2, $3, 'api', 'test', $4, '{admin,audit,llm}', $2, now() + interval '1 day')`,
    [minted.id, adminId, orgId, minted.secretSha256],
  );
  await client.end();
  return { orgId, adminId, token: minted.text };
}
