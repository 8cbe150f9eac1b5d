import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

export interface EmbeddedPostgres {
  /** A `postgres://` URL for the ordinary `pg` client. */
  url: string;
  close(): Promise<void>;
}

/**
 * Postgres in-process (PGlite, Postgres compiled to wasm) with its data under
 * `dataDir/pg`, served on a loopback port so services run the same SQL
 * through the same `pg` client as against a real server. PGlite is a single
 * backend: give it a pool of one connection, or a second one would wait
 * behind an open transaction.
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  const dir = join(dataDir, "pg");
  await mkdir(dir, { recursive: true });
  const db = await PGlite.create({ dataDir: dir });
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0 });
  await server.start();
  const conn = server.getServerConn();
  return {
    url: `postgres://postgres@${conn}/postgres?sslmode=disable`,
    async close() {
      await server.stop();
      await db.close();
    },
  };
}
