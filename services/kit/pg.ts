import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import type { Logger } from "./log.js";

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** Anything that runs a query: the pool, or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, "query">;

export interface PoolOptions {
  max?: number;
  /** Names the pool in `pg_stat_activity`, so operators see which service holds connections. */
  applicationName: string;
}

export function createPool(url: string, options: PoolOptions): Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its server must not crash the process; the next query reconnects.
  pool.on("error", () => undefined);
  // Nor one that is checked out (pg-pool listens only to idle ones): its queries fail with the
  // error, and the pool drops it when it is released.
  pool.on("connect", (client) => client.on("error", () => undefined));
  return pool;
}

/**
 * For a transaction whose locks others wait on: `withBegin`, statements
 * sent in BEGIN's round trip (plain SQL text: a query with parameters
 * holds a single statement, so values are written as literals, escaped
 * with the client's `escapeLiteral`); `commit`, what ends the transaction
 * in place of a bare COMMIT, so the last statements can share its round
 * trip. It must end with COMMIT.
 */
export interface TransactionRoundTrips<T> {
  withBegin?: string;
  commit?: (tx: PoolClient, result: T) => Promise<unknown>;
}

/** Runs `work` in a transaction, committing on success and rolling back on any error. */
export async function inTransaction<T>(
  pool: Pool,
  work: (tx: PoolClient) => Promise<T>,
  { withBegin, commit }: TransactionRoundTrips<T> = {},
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query(withBegin ? `BEGIN; ${withBegin}` : "BEGIN");
    const result = await work(client);
    await (commit ? commit(client, result) : client.query("COMMIT"));
    return result;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

const migrationFile = /^(\d{3})_[a-z0-9_]+\.sql$/;

/**
 * Applies the forward-only migrations in `dir` (files `NNN_name.sql`) to
 * `schema`, each in its own transaction, recording them in
 * `<schema>.schema_migrations`. Replicas starting together take turns on an
 * advisory lock. A database that has a migration this build does not know
 * was written by a newer release: start-up stops rather than run old code
 * against it.
 */
export async function migrate(pool: Pool, schema: string, dir: string, log: Logger): Promise<void> {
  if (!/^[a-z_]+$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
  const files = (await readdir(dir)).filter((f) => migrationFile.test(f)).sort();
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock(hashtext($1))", [`airlock.migrate.${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (
         version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const applied = new Map<number, string>(
      (
        await client.query<{ version: number; name: string }>(
          `SELECT version, name FROM ${schema}.schema_migrations`,
        )
      ).rows.map((r) => [r.version, r.name]),
    );
    const known = new Set(files.map((f) => Number(migrationFile.exec(f)![1])));
    const unknown = [...applied.keys()].filter((v) => !known.has(v));
    if (unknown.length > 0) {
      throw new Error(
        `schema ${schema} has migrations ${unknown.join(", ")} that this build does not have: it was upgraded by a newer release`,
      );
    }
    for (const file of files) {
      const version = Number(migrationFile.exec(file)![1]);
      if (applied.has(version)) continue;
      const sql = await readFile(join(dir, file), "utf8");
      await client.query("BEGIN");
      try {
        await client.query(sql);
        await client.query(
          `INSERT INTO ${schema}.schema_migrations (version, name) VALUES ($1, $2)`,
          [version, file],
        );
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK");
        throw new Error(`migration ${schema}/${file} failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
      log.info({ schema, migration: file }, "migration applied");
    }
  } finally {
    await client
      .query("SELECT pg_advisory_unlock(hashtext($1))", [`airlock.migrate.${schema}`])
      .catch(() => undefined);
    client.release();
  }
}
