import pg from "pg";
import { randomBytes } from "node:crypto";

/**
 * Where the tests find Postgres and Redis: DATABASE_URL and REDIS_URL, or the
 * local servers. scripts/test.mjs checks that they answer before ava starts.
 */
export const adminDatabaseUrl =
  process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** A fresh database for one test file (bootstrap needs a database with no principals), dropped after. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `airlock_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminDatabaseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminDatabaseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: adminDatabaseUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/** A secret shared by the processes of one test, as AIRLOCK_SERVICE_SECRET. */
export function testServiceSecret(): string {
  return randomBytes(32).toString("base64url");
}
