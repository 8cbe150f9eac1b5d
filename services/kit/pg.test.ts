import test from "ava";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase } from "../../test/support/env.js";
import { LogCapture } from "../../test/support/log-capture.js";
import { createLogger } from "./log.js";
import { createPool, migrate } from "./pg.js";

const log = createLogger({ service: "t", destination: new LogCapture() });

test("migrations apply once, in order, even when replicas start together", async (t) => {
  const db = await createTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), "airlock-mig-"));
  const pools = [
    createPool(db.url, { applicationName: "a" }),
    createPool(db.url, { applicationName: "b" }),
  ];
  t.teardown(async () => {
    await Promise.all(pools.map((p) => p.end()));
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });
  await writeFile(
    join(dir, "001_first.sql"),
    "CREATE TABLE demo.t (id int); INSERT INTO demo.t VALUES (1);",
  );
  await writeFile(join(dir, "002_second.sql"), "INSERT INTO demo.t VALUES (2);");
  await Promise.all(pools.map((p) => migrate(p, "demo", dir, log)));
  await migrate(pools[0]!, "demo", dir, log);
  const { rows } = await pools[0]!.query("SELECT id FROM demo.t ORDER BY id");
  t.deepEqual(
    rows.map((r) => r.id),
    [1, 2],
  );
});

test("a failed migration leaves nothing behind; a database newer than the build stops start-up", async (t) => {
  const db = await createTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), "airlock-mig-"));
  const pool = createPool(db.url, { applicationName: "t" });
  t.teardown(async () => {
    await pool.end();
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });
  await writeFile(join(dir, "001_ok.sql"), "CREATE TABLE demo.t (id int);");
  await writeFile(join(dir, "002_bad.sql"), "INSERT INTO demo.t VALUES (1); SELECT nonsense;");
  await t.throwsAsync(migrate(pool, "demo", dir, log), {
    message: /migration demo\/002_bad.sql failed/,
  });
  t.is((await pool.query("SELECT count(*)::int AS n FROM demo.t")).rows[0].n, 0, "002 rolled back");
  await rm(join(dir, "002_bad.sql"));
  await pool.query(
    "INSERT INTO demo.schema_migrations (version, name) VALUES (7, '007_future.sql')",
  );
  await t.throwsAsync(migrate(pool, "demo", dir, log), {
    message: /has migrations 7 that this build does not have/,
  });
});
