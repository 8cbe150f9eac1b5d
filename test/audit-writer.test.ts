import test from "ava";
import { generateKeyPairSync } from "node:crypto";
import { fileURLToPath } from "node:url";
import { keyIdOf } from "../services/audit/checkpoint.js";
import { incomingRecord } from "../services/audit/convert.js";
import { copyRows, type RowLoader } from "../services/audit/copy.js";
import { dayOf, Partitions } from "../services/audit/partitions.js";
import { PgAuditWriter } from "../services/audit/pg-store.js";
import { createLogger } from "../services/kit/log.js";
import { createPool, migrate } from "../services/kit/pg.js";
import { llmResponse } from "./support/audit-records.js";
import { createTestDatabase } from "./support/env.js";

const db = await createTestDatabase();
const pool = createPool(db.url, { applicationName: "audit-writer-test" });
const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const key = { keyId: keyIdOf(publicKey), privateKey, publicKeyPem: "" };

test.before(async () => {
  const migrations = fileURLToPath(new URL("../services/audit/migrations", import.meta.url));
  await migrate(pool, "audit", migrations, createLogger({ service: "test", level: "silent" }));
});
test.after.always(async () => {
  await pool.end();
  await db.drop();
});

test("a batch that fails inside a group fails alone: the batches written with it are stored, in one gap-free chain", async (t) => {
  const poison = "rec_poison";
  // The real COPY, refusing one batch's rows as a database fault would; the first
  // transactions wait at the gate until every batch is queued behind them.
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const contentLoads: number[] = [];
  const load: RowLoader = async (tx, table, columns, rows) => {
    await gate;
    if (table === "audit.contents") contentLoads.push(rows.length);
    if (rows.some((row) => row[0] === poison)) throw new Error("refused by the database");
    return copyRows(tx, table, columns, rows);
  };
  const partitions = new Partitions(pool);
  const now = Date.now();
  await partitions.ensure([dayOf(now)]);
  const writer = new PgAuditWriter(pool, partitions, { key, every: 1000 }, load);
  const orgId = "org_writer";
  const batches = Array.from({ length: 10 }, (_, b) =>
    Array.from({ length: 20 }, (_, i) =>
      incomingRecord(
        llmResponse(orgId, { id: b === 6 && i === 3 ? poison : undefined, timeMs: now + i }),
        i,
      ),
    ),
  );
  // Sent at once: two transactions start, the other eight batches queue and go as one group.
  const settled = Promise.allSettled(batches.map((batch) => writer.append(batch)));
  setTimeout(open, 200);
  const results = await settled;
  t.true(contentLoads.includes(8 * 20), `contents loaded per transaction: ${contentLoads}`);
  results.forEach((r, b) => {
    if (b === 6) t.like(r, { status: "rejected", reason: { message: "refused by the database" } });
    else t.like(r, { status: "fulfilled", value: { stored: 20, duplicates: 0 } });
  });
  const { rows } = await pool.query<{ seq: string; id: string }>(
    "SELECT seq, id FROM audit.records WHERE chain_id = $1 ORDER BY seq",
    [orgId],
  );
  t.is(rows.length, 9 * 20);
  t.deepEqual(
    rows.map((r) => Number(r.seq)),
    Array.from({ length: 180 }, (_, i) => i + 1),
  );
  t.false(rows.some((r) => r.id === poison));
  const { rows: contents } = await pool.query("SELECT 1 FROM audit.contents WHERE org_id = $1", [
    orgId,
  ]);
  t.is(contents.length, 9 * 20);
});
