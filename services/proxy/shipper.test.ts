import test, { type ExecutionContext } from "ava";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { Registry } from "prom-client";
import { AuditService, type Record as AuditRecord } from "../../gen/airlock/audit/v1/audit_pb.js";
import { requestRecord, responseRecord } from "../../test/support/llm-records.js";
import { createLogger } from "../kit/log.js";
import { Shipper, type ShipperOptions } from "./shipper.js";
import { parseSpoolLine } from "./spool-line.js";
import { Spool } from "./spool.js";

const log = createLogger({ service: "test", level: "silent" });

/** Append as audit answers it: idempotent on id; down, or refusing some ids as invalid, on demand. */
class FakeAudit {
  readonly stored = new Map<string, AuditRecord>();
  readonly batches: number[] = [];
  down = false;
  invalid = new Set<string>();
  readonly client = createClient(
    AuditService,
    createRouterTransport((router) =>
      router.service(AuditService, {
        append: (req) => {
          if (this.down) throw new ConnectError("audit is down", Code.Unavailable);
          const bad = req.records.find((r) => this.invalid.has(r.id));
          if (bad) throw new ConnectError(`${bad.id}: invalid`, Code.InvalidArgument);
          this.batches.push(req.records.length);
          for (const r of req.records) this.stored.set(r.id, r);
          return { stored: req.records.length, duplicates: 0 };
        },
      }),
    ),
  );
}

async function setup(
  t: ExecutionContext,
  options: { dir?: string; segmentBytes?: number } & Partial<ShipperOptions> = {},
) {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "airlock-shipper-")));
  const spool = await Spool.open({
    dir,
    sync: "interval",
    syncIntervalMs: 5,
    segmentBytes: options.segmentBytes ?? 8 * 1024 * 1024,
    maxBytes: 1024 * 1024 * 1024,
    log,
  });
  const audit = new FakeAudit();
  const registry = new Registry();
  const shipper = new Shipper({
    spool,
    audit: audit.client,
    log,
    registry,
    rejectedPath: join(dir, "rejected.jsonl"),
    minBackoffMs: 5,
    maxBackoffMs: 20,
    rotateAfterMs: 50,
    ...options,
  });
  t.teardown(async () => {
    await shipper.stop(0);
    await spool.close();
    await rm(dir, { recursive: true, force: true });
  });
  const metric = async (name: string) =>
    (await registry.getSingleMetric(name)!.get()).values.reduce((sum, v) => sum + v.value, 0);
  return { dir, spool, audit, shipper, metric };
}

async function until(condition: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const started = performance.now();
  while (!(await condition())) {
    if (performance.now() - started > ms) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

const segmentFiles = async (dir: string) =>
  (await readdir(dir)).filter((n) => n.startsWith("segment-"));

test("every record reaches audit once, in order, and shipped segments are deleted", async (t) => {
  const { dir, spool, audit, shipper, metric } = await setup(t, { segmentBytes: 2048 });
  shipper.start();
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) {
    await spool.record(requestRecord(`c${i}`));
    await spool.record(responseRecord(`c${i}`));
    ids.push(`c${i}.request`, `c${i}.response`);
  }
  await until(() => audit.stored.size === 60);
  t.deepEqual([...audit.stored.keys()], ids);
  t.is(await metric("airlock_audit_records_shipped_total"), 60);
  // The segment being written goes too, once old enough, so shipped prompts do not stay on disk.
  await until(async () => (await segmentFiles(dir)).length === 0);
  t.deepEqual(shipper.pending(), { bytes: 0, records: 0 });
  t.is(spool.totalBytes, 0);
});

test("batches hold at most batchRecords records", async (t) => {
  const { spool, audit, shipper } = await setup(t, { batchRecords: 7 });
  await Promise.all(Array.from({ length: 40 }, (_, i) => spool.record(requestRecord(`b${i}`))));
  shipper.start();
  await until(() => audit.stored.size === 40);
  t.true(audit.batches.every((n) => n <= 7));
  t.is(audit.batches[0], 7);
});

test("a batch is read and encoded a few records at a time, letting calls in between", async (t) => {
  const { spool, audit, shipper } = await setup(t, { batchRecords: 400 });
  await Promise.all(Array.from({ length: 400 }, (_, i) => spool.record(requestRecord(`y${i}`))));
  // Turns of the event loop, counted until the batch reaches audit.
  let turns = 0;
  let counting = true;
  const count = () => {
    turns++;
    if (counting) setImmediate(count);
  };
  t.teardown(() => (counting = false));
  let turnsAtAppend = 0;
  const append = audit.client.append.bind(audit.client);
  audit.client.append = (request, options) => {
    turnsAtAppend ||= turns;
    return append(request, options);
  };
  setImmediate(count);
  shipper.start();
  await until(() => audit.stored.size === 400);
  t.deepEqual(audit.batches, [400]);
  // Reading the segment takes a few turns; the rest are the pauses between steps of eight.
  t.true(
    turnsAtAppend >= 400 / 8 - 1,
    `event loop turns before the batch was sent: ${turnsAtAppend}`,
  );
});

test("under a steady trickle of records, one Append per linger interval, not one per round trip", async (t) => {
  const lingerMs = 40;
  const { spool, audit, shipper } = await setup(t, { lingerMs });
  shipper.start();
  const started = performance.now();
  for (let i = 0; i < 150; i++) {
    await spool.record(requestRecord(`trickle${i}`));
    await new Promise((r) => setTimeout(r, 2));
  }
  const elapsed = performance.now() - started;
  await until(() => audit.stored.size === 150);
  // Audit answers at once here: shipping again right after each answer would make an Append
  // of every record or two.
  t.true(
    audit.batches.length <= elapsed / lingerMs + 3,
    `${audit.batches.length} Appends in ${elapsed.toFixed(0)} ms`,
  );
});

test("while audit is down records wait on disk, and all arrive when it is back", async (t) => {
  const { dir, spool, audit, shipper, metric } = await setup(t);
  audit.down = true;
  shipper.start();
  for (let i = 0; i < 20; i++) await spool.record(requestRecord(`d${i}`));
  await until(async () => (await metric("airlock_audit_ship_failures_total")) >= 3);
  t.is(audit.stored.size, 0);
  t.like(shipper.pending(), { records: 20 });
  t.is(await metric("airlock_audit_spool_pending_records"), 20);
  t.true((await segmentFiles(dir)).length > 0);
  audit.down = false;
  await until(() => audit.stored.size === 20);
  t.deepEqual(
    [...audit.stored.keys()],
    Array.from({ length: 20 }, (_, i) => `d${i}.request`),
  );
});

test("segments a previous process left are shipped by the next one", async (t) => {
  const first = await setup(t);
  first.audit.down = true;
  first.shipper.start();
  await first.spool.record(requestRecord("old"));
  await first.spool.record(responseRecord("old"));
  await first.shipper.stop(0);
  await first.spool.close();
  const second = await setup(t, { dir: first.dir });
  t.like(second.shipper.pending(), { records: 2 });
  second.shipper.start();
  await until(() => second.audit.stored.size === 2);
  t.deepEqual([...second.audit.stored.keys()], ["old.request", "old.response"]);
  await until(async () => (await segmentFiles(first.dir)).length === 0);
});

test("stop ships what is there, and with audit down returns after the grace, leaving the records on disk", async (t) => {
  const { dir, spool, audit, shipper } = await setup(t);
  shipper.start();
  audit.down = true;
  await spool.record(requestRecord("late"));
  const started = performance.now();
  await shipper.stop(100);
  const took = performance.now() - started;
  t.true(took >= 90 && took < 1000, `${took} ms`);
  t.is(audit.stored.size, 0);
  t.is((await segmentFiles(dir)).length, 1);
});

test("stop with audit up sends what was written just before", async (t) => {
  const { spool, audit, shipper } = await setup(t);
  shipper.start();
  await spool.record(requestRecord("last"));
  await shipper.stop(1000);
  t.true(audit.stored.has("last.request"));
});

test("a record audit refuses as invalid is set aside, and the records around it are stored", async (t) => {
  const { dir, spool, audit, shipper, metric } = await setup(t);
  audit.invalid.add("bad.request");
  for (const id of ["a", "bad", "b"]) await spool.record(requestRecord(id));
  shipper.start();
  await until(() => audit.stored.size === 2);
  t.deepEqual([...audit.stored.keys()], ["a.request", "b.request"]);
  const aside = (await readFile(join(dir, "rejected.jsonl"), "utf8")).trim().split("\n");
  t.is(aside.length, 1);
  t.is(parseSpoolLine(aside[0]!).meta.id, "bad");
  t.is(await metric("airlock_audit_records_rejected_total"), 1);
});

test("an unreadable line (a record cut short by a power failure) is set aside; the rest is shipped", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "airlock-shipper-"));
  const good = JSON.stringify(requestRecord("whole")) + "\n";
  await writeFile(join(dir, "segment-000000000001.jsonl"), good + '{"id":"cut","ki');
  const { audit, shipper } = await setup(t, { dir });
  shipper.start();
  await until(() => audit.stored.size === 1);
  await until(async () => (await segmentFiles(dir)).length === 0);
  t.is(await readFile(join(dir, "rejected.jsonl"), "utf8"), '{"id":"cut","ki\n');
  t.deepEqual(shipper.pending(), { bytes: 0, records: 0 });
});
