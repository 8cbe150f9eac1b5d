import {
  closeSync,
  fdatasync,
  fsync,
  ftruncateSync,
  openSync,
  writeSync,
  type NoParamCallback,
} from "node:fs";
import { mkdir, readdir, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../kit/log.js";
import type { LlmRecord, Recorder } from "./records.js";
import { countLines } from "./segment-reader.js";

export type SpoolSync = "interval" | "always";

export interface SpoolOptions {
  dir: string;
  /** `interval`: fdatasync in the background every `syncIntervalMs`; `always`: before `record` resolves. */
  sync: SpoolSync;
  syncIntervalMs: number;
  /** A segment that reaches this size is closed and a new one started. */
  segmentBytes: number;
  /** Past this many bytes on disk, records of new calls are refused. */
  maxBytes: number;
  log: Logger;
}

/** A record of a new call was refused: the spool holds `maxBytes` already. */
export class SpoolFullError extends Error {
  override name = "SpoolFullError";
}

/** A segment file as the shipper sees it. */
export interface SegmentView {
  readonly seq: number;
  readonly path: string;
  /** Bytes of whole records in the file: a read up to here never ends inside a record. */
  readonly size: number;
  /** Records (lines) in the file. */
  readonly records: number;
  /** No more records will be written to it. */
  readonly sealed: boolean;
  /** When it was opened for writing (ms since the epoch); 0 for segments found at start. */
  readonly openedAt: number;
}

interface Segment extends SegmentView {
  size: number;
  records: number;
  sealed: boolean;
  /** -1 once closed (and for segments found at start, which are never written again). */
  fd: number;
  syncedSize: number;
  /** Its directory entry is on disk: a new file is lost on power failure until the directory is synced. */
  linked: boolean;
}

interface Pending {
  line: string;
  bytes: number;
  /** A request record: refused when the spool is full (a response record is not: its call already went). */
  opensCall: boolean;
  done: (err?: Error) => void;
}

const segmentName = /^segment-(\d{12})\.jsonl$/;
const promised = (run: (cb: NoParamCallback) => void) =>
  new Promise<void>((resolve, reject) => run((err) => (err ? reject(err) : resolve())));

/**
 * The proxy's durable record of calls: records appended as JSON lines to
 * numbered segment files, read back and deleted by the shipper once audit
 * has them. A record counts as written when the write call that carried it
 * returned (the kernel holds it, so a crash or SIGKILL of the process loses
 * nothing). Records made during one turn of the event loop go out together
 * in one synchronous write at its end (group commit): appending a few
 * kilobytes to the page cache takes microseconds, less than a round trip
 * through libuv's thread pool, and a busy proxy makes one write per turn
 * instead of one per record. fdatasync, which takes milliseconds, runs in
 * the thread pool, for every write since the last one at once.
 */
export class Spool implements Recorder {
  private readonly segments: Segment[] = [];
  /** Segments whose files are open: the one being written, and sealed ones until their last sync. */
  private readonly open = new Set<Segment>();
  private pending: Pending[] = [];
  private scheduled = false;
  private closed = false;
  private bytes = 0;
  private lastSeq: number;
  private waiters: { segment: Segment; upTo: number; done: (err?: Error) => void }[] = [];
  private syncing: Promise<void> | undefined;
  private syncAgain = false;
  /** Written since the last sync began. */
  private dirty = false;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<() => void>();

  private constructor(
    private readonly options: SpoolOptions,
    private readonly dirFd: number,
    found: Segment[],
  ) {
    this.segments.push(...found);
    this.bytes = found.reduce((sum, s) => sum + s.size, 0);
    this.lastSeq = found.at(-1)?.seq ?? 0;
    if (options.sync === "interval") {
      this.timer = setInterval(
        () => this.dirty && this.requestSync(),
        options.syncIntervalMs,
      ).unref();
    }
  }

  /** Opens the spool in `dir`, with the segments a previous process left there ready to ship. */
  static async open(options: SpoolOptions): Promise<Spool> {
    await mkdir(options.dir, { recursive: true, mode: 0o700 });
    const found: Segment[] = [];
    for (const name of (await readdir(options.dir)).sort()) {
      const seq = segmentName.exec(name)?.[1];
      if (!seq) continue;
      const path = join(options.dir, name);
      const size = (await stat(path)).size;
      found.push({
        seq: Number(seq),
        path,
        size,
        records: await countLines(path),
        sealed: true,
        openedAt: 0,
        fd: -1,
        syncedSize: size,
        linked: true,
      });
    }
    return new Spool(options, openSync(options.dir, "r"), found);
  }

  record(record: LlmRecord): Promise<void> {
    if (this.closed) return Promise.reject(new Error("the spool is closed"));
    const line = JSON.stringify(record) + "\n";
    return new Promise((resolve, reject) => {
      this.pending.push({
        line,
        bytes: Buffer.byteLength(line),
        opensCall: record.kind === "llm.request",
        done: (err) => (err ? reject(err) : resolve()),
      });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  /** The segment files in order, oldest first. */
  view(): readonly SegmentView[] {
    return this.segments;
  }

  /** Bytes of records on disk, shipped or not. */
  get totalBytes(): number {
    return this.bytes;
  }

  /** Calls `listener` after each write; returns a function that stops it. */
  onWrite(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Deletes segment `seq` when `shipped` (bytes acknowledged from its start)
   * covers all of it. A segment still being written is closed first: the
   * records of the next write go to a new one.
   */
  async release(seq: number, shipped: number): Promise<boolean> {
    const segment = this.segments.find((s) => s.seq === seq);
    if (!segment || shipped < segment.size) return false;
    this.seal(segment);
    this.segments.splice(this.segments.indexOf(segment), 1);
    this.bytes -= segment.size;
    await unlink(segment.path).catch((err: NodeJS.ErrnoException) => {
      // Left behind, it is shipped again after a restart: audit ignores records it has.
      if (err.code !== "ENOENT") {
        this.options.log.error({ err: err.message, path: segment.path }, "cannot delete segment");
      }
    });
    return true;
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const accepted: Pending[] = [];
    let bytes = 0;
    for (const p of this.pending) {
      if (p.opensCall && this.bytes + bytes + p.bytes > this.options.maxBytes) {
        p.done(new SpoolFullError(`the spool holds ${this.bytes} bytes, its limit`));
      } else {
        accepted.push(p);
        bytes += p.bytes;
      }
    }
    this.pending = [];
    if (!accepted.length) return;
    const fail = (err: Error) => accepted.forEach((p) => p.done(err));
    let segment: Segment;
    try {
      segment = this.active();
    } catch (err) {
      return fail(err as Error);
    }
    const data = Buffer.from(
      accepted.length === 1 ? accepted[0]!.line : accepted.map((p) => p.line).join(""),
    );
    try {
      for (let at = 0; at < data.length;) at += writeSync(segment.fd, data, at);
    } catch (err) {
      // No half record may stay: cut back to the last whole one, and write the next records elsewhere.
      try {
        ftruncateSync(segment.fd, segment.size);
      } catch {
        // The shipper reads only up to `size`, so the tail is never sent.
      }
      this.seal(segment);
      return fail(err as Error);
    }
    segment.size += data.length;
    segment.records += accepted.length;
    this.bytes += data.length;
    this.dirty = true;
    if (this.options.sync === "always") {
      for (const p of accepted) this.waiters.push({ segment, upTo: segment.size, done: p.done });
      this.requestSync();
    } else {
      for (const p of accepted) p.done();
    }
    if (segment.size >= this.options.segmentBytes) this.seal(segment);
    for (const listener of this.listeners) listener();
  };

  /** The segment being written, a new one when there is none. */
  private active(): Segment {
    const last = this.segments.at(-1);
    if (last && !last.sealed) return last;
    // Never a number used before in this process: the shipper's cursor names segments by it.
    const seq = ++this.lastSeq;
    const path = join(this.options.dir, `segment-${String(seq).padStart(12, "0")}.jsonl`);
    const segment: Segment = {
      seq,
      path,
      size: 0,
      records: 0,
      sealed: false,
      openedAt: Date.now(),
      fd: openSync(path, "a", 0o600),
      syncedSize: 0,
      linked: false,
    };
    this.segments.push(segment);
    this.open.add(segment);
    return segment;
  }

  /** No more writes to `segment`; its file is closed once what was written is synced. */
  private seal(segment: Segment): void {
    if (segment.sealed) return;
    segment.sealed = true;
    this.requestSync();
  }

  private requestSync(): void {
    if (this.syncing) {
      this.syncAgain = true;
      return;
    }
    this.syncing = (async () => {
      do {
        this.syncAgain = false;
        await this.syncOnce();
      } while (this.syncAgain);
    })().finally(() => (this.syncing = undefined));
  }

  /**
   * One group commit: every open segment's writes since the last sync, then
   * new directory entries. Deleted segments are synced too when a record in
   * them still waits for its sync (`always`): the shipper may send a record
   * before it is synced.
   */
  private async syncOnce(): Promise<void> {
    this.dirty = false;
    const open = [...this.open];
    const failed = new Map<Segment, Error>();
    for (const segment of open) {
      const upTo = segment.size;
      if (upTo === segment.syncedSize) continue;
      await promised((cb) => fdatasync(segment.fd, cb)).then(
        () => (segment.syncedSize = upTo),
        (err: Error) => failed.set(segment, err),
      );
    }
    const unlinked = open.filter((s) => !s.linked);
    if (unlinked.length) {
      await promised((cb) => fsync(this.dirFd, cb)).then(
        () => unlinked.forEach((s) => (s.linked = true)),
        (err: Error) => unlinked.forEach((s) => failed.set(s, err)),
      );
    }
    for (const [segment, err] of failed) {
      // After a failed fdatasync the kernel may have dropped the pages: nothing more goes to this file.
      this.options.log.error({ err: err.message, path: segment.path }, "spool sync failed");
      segment.sealed = true;
    }
    this.waiters = this.waiters.filter((w) => {
      const err = failed.get(w.segment);
      if (err) w.done(err);
      else if (w.segment.linked && w.segment.syncedSize >= w.upTo) w.done();
      else return true;
      return false;
    });
    for (const segment of open) {
      if (segment.sealed && (failed.has(segment) || segment.syncedSize === segment.size)) {
        closeSync(segment.fd);
        segment.fd = -1;
        this.open.delete(segment);
      }
    }
  }

  /** Writes what is pending, syncs everything and closes the files. Segments stay for the next start. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    clearInterval(this.timer);
    const last = this.segments.at(-1);
    if (last) this.seal(last);
    while (this.syncing) await this.syncing;
    closeSync(this.dirFd);
  }
}
