import test from "ava";
import pg from "pg";
import { copyRows, insertRows, type RowLoader } from "../services/audit/copy.js";
import { createTestDatabase } from "./support/env.js";

const db = await createTestDatabase();
const pool = new pg.Pool({ connectionString: db.url, max: 2 });

test.before(async () => {
  await pool.query(
    `CREATE TABLE t (name text, n bigint, at timestamptz, tags text[], body text, PRIMARY KEY (name));
     CREATE TABLE after_rows (note text)`,
  );
});
test.after.always(async () => {
  await pool.end();
  await db.drop();
});

// Text the text format would have had to escape, multi-byte UTF-8, and content as bytes.
const awkward = 'tab\there, newline\nthere, back\\slash, "quotes", ünïcødé ✓, 𝄞';
const rows = [
  ["plain", 0, new Date("2026-11-27T10:11:12.345Z"), [], Buffer.from('{"a":1}')],
  [
    awkward,
    9_007_199_254_740_991,
    new Date("1999-12-31T23:59:59.999Z"),
    ["a", awkward, "", "{braces}"],
    Buffer.from(JSON.stringify({ text: awkward })),
  ],
  ["negative", -42, new Date("2000-01-01T00:00:00.000Z"), ["one"], new Uint8Array()],
] as const;

// Two megabytes of rows, for a COPY refused early with most of its data still to come.
const bulk = Array.from({ length: 2000 }, (_, i) => [`row ${i}`, "x".repeat(1000)]);

for (const [name, load] of [
  ["binary COPY", copyRows],
  ["multi-row INSERT", insertRows],
] as [string, RowLoader][]) {
  test.serial(`${name} stores every kind of value exactly`, async (t) => {
    await pool.query("TRUNCATE t");
    const client = await pool.connect();
    try {
      await load(client, "t", ["name", "n", "at", "tags", "body"], rows);
    } finally {
      client.release();
    }
    const { rows: stored } = await pool.query<{
      name: string;
      n: string;
      at: Date;
      tags: string[];
      body: string;
    }>("SELECT name, n, at, tags, body FROM t ORDER BY n");
    t.deepEqual(
      stored.map((r) => [r.name, Number(r.n), r.at.toISOString(), r.tags, r.body]),
      [rows[2], rows[0], rows[1]].map(([name, n, at, tags, body]) => [
        name,
        n,
        at.toISOString(),
        [...tags],
        Buffer.from(body).toString("utf8"),
      ]),
    );
  });

  test.serial(`${name} fails on a duplicate key, storing nothing`, async (t) => {
    await pool.query("TRUNCATE t");
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      const error = await t.throwsAsync(load(client, "t", ["name"], [["same"], ["same"]]));
      t.is((error as { code?: string }).code, "23505");
      await client.query("ROLLBACK");
    } finally {
      client.release();
    }
    t.is((await pool.query("SELECT * FROM t")).rowCount, 0);
  });

  test.serial(
    `${name} runs the statements given to follow the rows, committing with them`,
    async (t) => {
      await pool.query("TRUNCATE t, after_rows");
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        await load(
          client,
          "t",
          ["name"],
          [["one"], ["two"]],
          // Among them a statement that returns rows: they are dropped.
          "SELECT count(*) FROM t; INSERT INTO after_rows VALUES ('after'); COMMIT",
        );
      } finally {
        client.release();
      }
      t.is((await pool.query("SELECT * FROM t")).rowCount, 2);
      t.deepEqual((await pool.query("SELECT note FROM after_rows")).rows, [{ note: "after" }]);
    },
  );

  test.serial(
    `${name} that fails skips the statements after the rows, and the connection serves the next query`,
    async (t) => {
      await pool.query("TRUNCATE t, after_rows");
      const client = await pool.connect();
      try {
        for (const [columns, values, code] of [
          [["name", "body"], [["same", ""], ["same", ""], ...bulk], "23505"], // early in the rows
          [["no_such_column"], [["x"]], "42703"], // fails before taking any row
        ] as const) {
          await client.query("BEGIN");
          const error = await t.throwsAsync(
            load(client, "t", columns, values, "INSERT INTO after_rows VALUES ('after'); COMMIT"),
          );
          t.is((error as { code?: string }).code, code);
          await client.query("ROLLBACK");
          // The rows sent after the refused statement were skipped, not read as commands.
          t.deepEqual((await client.query("SELECT 1 AS one")).rows, [{ one: 1 }]);
        }
      } finally {
        client.release();
      }
      t.is((await pool.query("SELECT * FROM t")).rowCount, 0);
      t.is((await pool.query("SELECT * FROM after_rows")).rowCount, 0);
    },
  );
}
