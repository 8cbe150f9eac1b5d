import test from "ava";
import { generateKeyPairSync } from "node:crypto";
import { fileURLToPath } from "node:url";
import { keyIdOf } from "../services/audit/checkpoint.js";
import { incomingRecord } from "../services/audit/convert.js";
import { copyRows, type RowLoader } from "../services/audit/copy.js";
import { dayOf, Partitions } from "../services/audit/partitions.js";
import { Audit } from "../services/audit/audit.js";
import { AppendNotifier } from "../services/audit/notifier.js";
import { maxWriting, PgAuditWriter } from "../services/audit/pg-store.js";
import { PgAuditReader } from "../services/audit/pg-reader.js";
import { MemoryCache } from "../services/kit/shared-cache.js";
import { createLogger } from "../services/kit/log.js";
import { createPool, migrate } from "../services/kit/pg.js";
import { llmResponse } from "./support/audit-records.js";
import { createTestDatabase } from "./support/env.js";

const db = await createTestDatabase();
const pool = createPool(db.url, { applicationName: "audit-writer-test" });
const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const key = { keyId: keyIdOf(publicKey), privateKey, publicKeyPem: "" };
const silent = createLogger({ service: "test", level: "silent" });

test.before(async () => {
  const migrations = fileURLToPath(new URL("../services/audit/migrations", import.meta.url));
  await migrate(pool, "audit", migrations, silent);
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
  const load: RowLoader = async (tx, table, columns, rows, then) => {
    await gate;
    if (table === "audit.contents") contentLoads.push(rows.length);
    if (rows.some((row) => row[0] === poison)) throw new Error("refused by the database");
    return copyRows(tx, table, columns, rows, then);
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
  // Sent at once: maxWriting transactions start, the other batches queue and go as one group.
  const settled = Promise.allSettled(batches.map((batch) => writer.append(batch)));
  setTimeout(open, 200);
  const results = await settled;
  t.true(
    contentLoads.includes((10 - maxWriting) * 20),
    `contents loaded per transaction: ${contentLoads}`,
  );
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

test("two writers taking turns on one chain each chain onto the other's records: one gap-free chain that verifies", async (t) => {
  // As two audit replicas serving one org: each must chain onto the records the other wrote.
  const { now, writers } = await replicas(7);
  const orgId = "org_turns";
  const turns = 6;
  for (let turn = 0; turn < turns; turn++) {
    const batch = Array.from({ length: 5 }, (_, i) =>
      incomingRecord(llmResponse(orgId, { timeMs: now + turn * 10 + i }), i),
    );
    t.like(await writers[turn % 2]!.append(batch), { stored: 5, duplicates: 0 });
  }
  t.like(await verifyChain(orgId), { ok: true, recordsChecked: turns * 5, checkpointsChecked: 3 });
  const { rows: checkpoints } = await pool.query<{ seq: string }>(
    "SELECT seq FROM audit.checkpoints WHERE chain_id = $1 ORDER BY seq",
    [orgId],
  );
  t.deepEqual(
    checkpoints.map((c) => Number(c.seq)),
    [10, 20, 30],
    "a checkpoint once seven records are past the last, at the end of a group",
  );
});

test("two writers racing on one chain, each with groups in flight: every record once, one gap-free chain that verifies", async (t) => {
  // As two audit replicas serving one org, each with transactions in flight.
  const { now, writers } = await replicas(50);
  const orgId = "org_race";
  const batches = Array.from({ length: 24 }, (_, b) =>
    Array.from({ length: 10 }, (_, i) =>
      incomingRecord(llmResponse(orgId, { timeMs: now + b * 10 + i }), i),
    ),
  );
  const results = await Promise.all(batches.map((batch, b) => writers[b % 2]!.append(batch)));
  t.true(results.every((r) => r.stored === 10 && r.duplicates === 0));
  const result = await verifyChain(orgId);
  t.like(result, { ok: true, recordsChecked: 240 });
  t.true(result.checkpointsChecked > 0, "the checkpoints signed on the way verify too");
});

/** Two writers on one database, as two audit replicas; a checkpoint every `every` records. */
async function replicas(every: number) {
  const partitions = new Partitions(pool);
  const now = Date.now();
  await partitions.ensure([dayOf(now)]);
  const writers = [0, 1].map(() => new PgAuditWriter(pool, partitions, { key, every }, copyRows));
  return { now, writers };
}

/** Verifies a chain from its first record to its head, contents and checkpoints included, as Verify does. */
async function verifyChain(chainId: string) {
  const audit = new Audit({
    writer: new PgAuditWriter(pool, new Partitions(pool), { key, every: 1000 }, copyRows),
    reader: new PgAuditReader(pool),
    // Verifying asks for no permission: that is the RPC's.
    check: () => Promise.reject(new Error("verifying checks no permission")),
    notifier: new AppendNotifier(new MemoryCache(), silent),
    publicKeys: async () => new Map([[key.keyId, publicKey]]),
  });
  return audit.verify(chainId, 0, 0);
}
