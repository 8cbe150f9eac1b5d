import test from "ava";
import fs from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../kit/log.js";
import { JsonText } from "./records.js";
import { parseSpoolLine, spoolLine } from "./spool-line.js";
import { Spool, SpoolFullError, type SpoolOptions } from "./spool.js";
import { requestRecord, responseRecord } from "../../test/support/llm-records.js";

const log = createLogger({ service: "test", level: "silent" });

async function openSpool(
  t: { teardown(fn: () => Promise<void>): void },
  options: Partial<SpoolOptions> = {},
) {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "airlock-spool-")));
  const spool = await Spool.open({
    dir,
    sync: "interval",
    syncIntervalMs: 5,
    segmentBytes: 8 * 1024 * 1024,
    maxBytes: 1024 * 1024 * 1024,
    log,
    ...options,
  });
  t.teardown(async () => {
    await spool.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { spool, dir };
}

const linesOf = async (path: string) =>
  (await readFile(path, "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const { meta, contentJson } = parseSpoolLine(l);
      return { ...meta, content: JSON.parse(contentJson) as unknown };
    });

type Fdatasync = (fd: number, cb: fs.NoParamCallback) => void;

/** Replaces fs.fdatasync (as the spool imports it) for the length of one test. */
function patchFdatasync(
  t: { teardown(fn: () => void): void },
  replacement: (original: Fdatasync) => Fdatasync,
) {
  const original = fs.fdatasync;
  fs.fdatasync = replacement(original) as typeof fs.fdatasync;
  syncBuiltinESMExports();
  t.teardown(() => {
    fs.fdatasync = original;
    syncBuiltinESMExports();
  });
}

test("a record is in its segment file, as one line (metadata, tab, content), when record() resolves", async (t) => {
  const { spool } = await openSpool(t);
  const records = [requestRecord("a"), responseRecord("a"), requestRecord("b")];
  // Made in one turn: they leave in one write, in order.
  await Promise.all(records.map((r) => spool.record(r)));
  const [segment] = spool.view();
  t.is(spool.view().length, 1);
  t.deepEqual(await linesOf(segment!.path), records);
  t.is(segment!.records, 3);
  t.is(segment!.size, (await readFile(segment!.path)).length);
  t.is(spool.totalBytes, segment!.size);
});

test("a body kept as the caller's text is spooled on one line and reads back as the same JSON", (t) => {
  const body = {
    model: "gpt-4o",
    messages: [{ role: "user", content: "tab\there,\nnewline,\r\nand \\ backslash" }],
  };
  // Pretty-printed by its client: raw tabs and newlines between the tokens.
  const text = JSON.stringify(body, null, "\t").replaceAll("\n", "\r\n");
  const record = { ...requestRecord("pretty"), content: { body: new JsonText(text) } };
  const line = spoolLine(record);
  t.is(line.indexOf("\n"), line.length - 1);
  const { meta, contentJson } = parseSpoolLine(line.slice(0, -1));
  t.deepEqual(JSON.parse(contentJson), { body });
  t.deepEqual({ ...meta, content: record.content }, record);
});

test("a full segment is sealed and the next records go to a new one", async (t) => {
  const { spool } = await openSpool(t, { segmentBytes: 4096 });
  for (let i = 0; i < 20; i++) await spool.record(requestRecord(`r${i}`, "x".repeat(500)));
  const segments = spool.view();
  t.true(segments.length > 1);
  t.true(segments.slice(0, -1).every((s) => s.sealed && s.size >= 4096));
  t.deepEqual(
    segments.map((s) => s.seq),
    segments.map((_, i) => i + 1),
  );
  const ids = (await Promise.all(segments.map((s) => linesOf(s.path)))).flat().map((r) => r.id);
  t.deepEqual(
    ids,
    Array.from({ length: 20 }, (_, i) => `r${i}`),
  );
});

test("segments left by a closed spool are found by the next one, which writes to a new segment", async (t) => {
  const { spool: first, dir } = await openSpool(t);
  await first.record(requestRecord("before"));
  await first.record(responseRecord("before"));
  await first.close();
  const { spool } = await openSpool(t, { dir });
  t.like(spool.view(), [{ seq: 1, records: 2, sealed: true }]);
  t.is(spool.totalBytes, spool.view()[0]!.size);
  await spool.record(requestRecord("after"));
  t.like(spool.view(), [{ seq: 1 }, { seq: 2, records: 1, sealed: false }]);
  t.deepEqual(
    (await linesOf(spool.view()[1]!.path)).map((r) => r.id),
    ["after"],
  );
});

test("release deletes a segment only once all of it is shipped", async (t) => {
  const { spool, dir } = await openSpool(t);
  await spool.record(requestRecord("a"));
  const [segment] = spool.view();
  t.false(await spool.release(segment!.seq, segment!.size - 1));
  t.deepEqual(await readdir(dir), ["segment-000000000001.jsonl"]);
  t.true(await spool.release(segment!.seq, segment!.size));
  t.deepEqual(await readdir(dir), []);
  t.is(spool.totalBytes, 0);
  // The segment being written was shipped: the next record starts a new one.
  await spool.record(requestRecord("b"));
  t.like(spool.view(), [{ seq: 2, records: 1 }]);
});

test("a full spool refuses the records of new calls, but not those of calls already made", async (t) => {
  const { spool } = await openSpool(t, { maxBytes: 2048 });
  await spool.record(requestRecord("a", "x".repeat(1500)));
  const refused = await t.throwsAsync(spool.record(requestRecord("b")));
  t.true(refused instanceof SpoolFullError);
  await spool.record(responseRecord("a"));
  t.deepEqual(
    (await linesOf(spool.view()[0]!.path)).map((r) => `${r.id} ${r.kind}`),
    ["a llm.request", "a llm.response"],
  );
  // Shipped and deleted: room again.
  await spool.release(1, spool.view()[0]!.size);
  await spool.record(requestRecord("c"));
});

test.serial("a failed write refuses its records and leaves no half record behind", async (t) => {
  const { spool } = await openSpool(t);
  await spool.record(requestRecord("a"));
  const original = fs.writeSync;
  let calls = 0;
  // Half the bytes go out, then the disk is full.
  fs.writeSync = ((fd: number, buffer: Buffer, offset: number) => {
    if (calls++ === 0)
      return original(fd, buffer, offset, Math.floor((buffer.length - offset) / 2));
    throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
  }) as unknown as typeof fs.writeSync;
  syncBuiltinESMExports();
  try {
    await t.throwsAsync(spool.record(requestRecord("b")), { message: /ENOSPC/ });
  } finally {
    fs.writeSync = original;
    syncBuiltinESMExports();
  }
  await spool.record(requestRecord("c"));
  const segments = spool.view();
  t.is(segments.length, 2, "the next records go to a new segment");
  const all = (await Promise.all(segments.map((s) => linesOf(s.path)))).flat();
  t.deepEqual(
    all.map((r) => r.id),
    ["a", "c"],
  );
  t.is((await readFile(segments[0]!.path)).length, segments[0]!.size);
});

test.serial(
  "sync=always: record() resolves only after fdatasync of its write returned",
  async (t) => {
    const held: (() => void)[] = [];
    patchFdatasync(t, (original) => (fd, cb) => void held.push(() => original(fd, cb)));
    const { spool } = await openSpool(t, { sync: "always" });
    let resolved = false;
    const written = spool.record(requestRecord("a")).then(() => (resolved = true));
    while (held.length === 0) await new Promise((r) => setTimeout(r, 1));
    await new Promise((r) => setTimeout(r, 20));
    t.false(resolved, "waits for the sync");
    t.is((await linesOf(spool.view()[0]!.path)).length, 1, "though the write is done");
    held.shift()!();
    await written;
    t.true(resolved);
  },
);

test.serial("sync=always: a failed fdatasync refuses the records it covered", async (t) => {
  patchFdatasync(
    t,
    () => (_fd, cb) => cb(Object.assign(new Error("EIO: i/o error"), { code: "EIO" })),
  );
  const { spool } = await openSpool(t, { sync: "always" });
  await t.throwsAsync(spool.record(requestRecord("a")), { message: /EIO/ });
});

test.serial(
  "sync=interval: record() resolves at the write; a sync follows within the interval",
  async (t) => {
    const synced: number[] = [];
    patchFdatasync(t, (original) => (fd, cb) => original(fd, (err) => (synced.push(fd), cb(err))));
    const { spool } = await openSpool(t, { sync: "interval", syncIntervalMs: 50 });
    const started = performance.now();
    await spool.record(requestRecord("a"));
    t.true(performance.now() - started < 40, "not held for the sync");
    t.is(synced.length, 0);
    while (synced.length === 0 && performance.now() - started < 1000)
      await new Promise((r) => setTimeout(r, 5));
    t.is(synced.length, 1);
  },
);

test("records found at start: a line cut short is counted as one, so it is shipped (or set aside) too", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "airlock-spool-"));
  const whole = JSON.stringify(requestRecord("a")) + "\n";
  await writeFile(join(dir, "segment-000000000007.jsonl"), whole + '{"id":"b","ki');
  const { spool } = await openSpool(t, { dir });
  t.like(spool.view(), [{ seq: 7, records: 2, size: Buffer.byteLength(whole) + 13, sealed: true }]);
  await spool.record(requestRecord("c"));
  t.is(spool.view()[1]!.seq, 8);
});
