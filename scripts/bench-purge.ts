/**
 * Audit purge: how fast a retention run deletes one expired day, on the real
 * Postgres, in process (no RPC):
 * - one day of BENCH_PURGE_RECORDS (default 1,000,000) records with ~2 KB
 *   of content each is loaded straight into the day's partitions with
 *   generate_series (four orgs, so four chains);
 * - the count and plan a run makes first (what a dry run does);
 * - (a) the day purged by partition: truncated, survivors (none) copied back;
 * - (b) the same data, reloaded, deleted in batches (contents, then records);
 * - during (a), the longest an append would wait for the partition lock.
 *
 *   npm run bench:purge
 *
 * The chain fields are synthetic (the chains do not verify): only deletion
 * is measured. Environment: BENCH_PURGE_RECORDS, BENCH_PURGE_BATCH (rows per
 * batch, default 5000 as AIRLOCK_AUDIT_PURGE_BATCH), BENCH_KEEP_DB.
 */
import { fileURLToPath } from "node:url";
import { dayMs, partitionLock, Partitions } from "../services/audit/partitions.js";
import { PgAuditPurger, purgeInBatches, truncatePartition } from "../services/audit/pg-purge.js";
import type { PurgePolicy } from "../services/audit/purge-policy.js";
import { DayPurgeSql } from "../services/audit/purge-sql.js";
import { createLogger } from "../services/kit/log.js";
import { createPool, migrate } from "../services/kit/pg.js";
import { createTestDatabase } from "../test/support/env.js";

const total = Number(process.env.BENCH_PURGE_RECORDS ?? 1_000_000);
const batchSize = Number(process.env.BENCH_PURGE_BATCH ?? 5000);
const day = Math.floor(Date.now() / dayMs) - 100;
const policy: PurgePolicy = {
  runId: "run_bench",
  orgs: new Map(),
  defaults: { contentBeforeMs: (day + 1) * dayMs, metadataBeforeMs: (day + 1) * dayMs },
  receiptKinds: ["retention.run"],
  holds: [],
  dryRun: false,
};

const db = await createTestDatabase();
const pool = createPool(db.url, { applicationName: "bench-purge", max: 4 });
const seconds = async (work: () => Promise<unknown>) => {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
};
const rate = (s: number) => Math.round(total / s).toLocaleString("en-US");

try {
  await migrate(
    pool,
    "audit",
    fileURLToPath(new URL("../services/audit/migrations", import.meta.url)),
    createLogger({ service: "bench-purge", level: "warn" }),
  );
  await new Partitions(pool).ensure([day]);
  const sql = new DayPurgeSql(policy, day, []);
  const load = () => loadDay(sql.records, sql.contents);

  const loaded = await seconds(load);
  const counted = await seconds(async () => {
    const dry = await new PgAuditPurger(pool, batchSize).purge({ ...policy, dryRun: true });
    if (dry.partitionsTruncated !== 1) throw new Error("the day should be purged by partition");
  });
  const stall = appendStalls();
  const truncated = await seconds(async () => {
    await truncatePartition(pool, sql.truncateContents());
    await truncatePartition(pool, sql.truncateRecords(policy.runId));
  });
  const longestStall = await stall.stop();
  await pool.query("TRUNCATE audit.purged_ranges");
  await load();
  const batched = await seconds(async () => {
    await purgeInBatches(pool, sql.contents, total, batchSize, (a, b) => sql.contentBatch(a, b));
    await purgeInBatches(pool, sql.records, total, batchSize, (a, b) =>
      sql.recordBatch(a, b, policy.runId),
    );
  });
  const left = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${sql.records}`);
  if (Number(left.rows[0]!.n) !== 0) throw new Error("batches left records behind");

  console.log(`\nAudit purge benchmark, ${new Date().toISOString()}`);
  console.log(
    `\nOne day of ${total.toLocaleString("en-US")} records (~2 KB of content each) in four chains, ` +
      `loaded with generate_series in ${loaded.toFixed(1)} s. The chain fields are synthetic: ` +
      `only deletion is measured.\n`,
  );
  console.log("| step | seconds | records/s |");
  console.log("|---|---|---|");
  console.log(`| count and plan (a dry run's work) | ${counted.toFixed(2)} | ${rate(counted)} |`);
  console.log(
    `| (a) by partition: truncate, copy back survivors (none) | ${truncated.toFixed(2)} | ${rate(truncated)} |`,
  );
  console.log(
    `| (b) in batches of ${batchSize}, contents then records | ${batched.toFixed(2)} | ${rate(batched)} |`,
  );
  console.log(
    `\n(b) takes ${(batched / truncated).toFixed(1)}x as long as (a). During (a), an append ` +
      `waited at most ${longestStall.toFixed(2)} s for the partition lock; (b) does not take it.`,
  );
} finally {
  await pool.end();
  if (process.env.BENCH_KEEP_DB) console.log(`kept ${db.url}`);
  else await db.drop();
}

/**
 * What appends feel: the partition lock taken shared, as an append's first
 * statement does, over and over on a connection of its own; the longest wait.
 */
function appendStalls() {
  let running = true;
  let longest = 0;
  const probe = (async () => {
    const client = await pool.connect();
    try {
      while (running) {
        const started = performance.now();
        await client.query(`BEGIN; SELECT pg_advisory_xact_lock_shared(${partitionLock}); COMMIT`);
        longest = Math.max(longest, (performance.now() - started) / 1000);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    } finally {
      client.release();
    }
  })();
  return {
    async stop() {
      running = false;
      await probe;
      return longest;
    },
  };
}

/**
 * Fills the day's partitions, then vacuums them as autovacuum would have
 * long since done for a day 100 days old, so neither run pays for hint bits.
 */
async function loadDay(records: string, contents: string) {
  const start = new Date(day * dayMs).toISOString();
  const step = dayMs / total;
  const time = "$1::timestamptz + (i * $2::float8) * interval '1 millisecond'";
  await pool.query(
    `INSERT INTO ${records} (id, time, kind, org_id, actor, actor_kind, action, subject, status,
       session_id, interception_id, workspace, repositories, user_agent, provider, model,
       tool_names, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
       reasoning_tokens, latency_ms, attributes, content_sha256, chain_id, seq, prev_hash, hash)
     SELECT 'bench_' || i, ${time}, 'llm.response', 'org_bench' || (i % 4),
       'agt_bench' || (i % 50), 'agent', 'invoke', '', 'ok', 'ses_' || (i % 20000),
       'call_' || i, 'ws' || (i % 7), ARRAY['github.com/acme/repo' || (i % 40)],
       'claude-cli/2.0', 'openai', 'gpt-4.1-mini', ARRAY['shell'], 1200, 300, 800, 0, 0, 900,
       '{"attempts":1,"httpStatus":200,"stream":true}', md5(i::text) || md5(i::text),
       'org_bench' || (i % 4), i / 4 + 1, md5((i - 4)::text), md5(i::text)
     FROM generate_series(0, $3::int - 1) i`,
    [start, step, total],
  );
  // Prompts repeat themselves much as this text does (see bench-audit.ts's content).
  await pool.query(
    `INSERT INTO ${contents} (record_id, time, org_id, body)
     SELECT 'bench_' || i, ${time}, 'org_bench' || (i % 4),
       '{"text":"' || repeat(md5(i::text) || ' ', 60) || '"}'
     FROM generate_series(0, $3::int - 1) i`,
    [start, step, total],
  );
  await pool.query(`VACUUM (ANALYZE) ${records}, ${contents}`);
}
