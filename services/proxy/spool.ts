import { ftruncateSync, openSync, writeSync } from "node:fs";
import { mkdir, readdir, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../kit/log.js";
import { GroupSync, type SyncedFile, type SyncMode } from "./group-sync.js";
import type { LlmRecord, Recorder } from "./records.js";
import { countLines } from "./segment-reader.js";
import { spoolLine } from "./spool-line.js";

export interface SpoolOptions {
  dir: string;
  /** `interval`: fdatasync in the background every `syncIntervalMs`; `always`: before `record` resolves. */
  sync: SyncMode;
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

/** Segments found at start are never written again: their `fd` is -1. */
interface Segment extends SegmentView, SyncedFile {
  size: number;
  records: number;
  sealed: boolean;
}

interface Pending {
  line: string;
  bytes: number;
  /** A request record: refused when the spool is full (a response record is not: its call already went). */
  opensCall: boolean;
  done: (err?: Error) => void;
}

const segmentName = /^segment-(\d{12})\.jsonl$/;

/**
 * The proxy's durable record of calls: records appended as JSON lines to
 * numbered segment files, read back and deleted by the shipper once audit
 * has them. A record counts as written when the write call that carried it
 * returned (the kernel holds it, so a crash or SIGKILL of the process loses
 * nothing). Records made during one turn of the event loop go out together
 * in one synchronous write at its end (group commit): appending a few
 * kilobytes to the page cache takes microseconds, less than a round trip
 * through libuv's thread pool, and a busy proxy makes one write per turn
 * instead of one per record. fdatasync is the `GroupSync`'s.
 */
export class Spool implements Recorder {
  private readonly segments: Segment[] = [];
  private pending: Pending[] = [];
  private scheduled = false;
  private closed = false;
  private bytes = 0;
  private lastSeq: number;
  private readonly listeners = new Set<() => void>();

  private constructor(
    private readonly options: SpoolOptions,
    private readonly sync: GroupSync,
    found: Segment[],
  ) {
    this.segments.push(...found);
    this.bytes = found.reduce((sum, s) => sum + s.size, 0);
    this.lastSeq = found.at(-1)?.seq ?? 0;
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
    const sync = new GroupSync({
      mode: options.sync,
      intervalMs: options.syncIntervalMs,
      dirFd: openSync(options.dir, "r"),
      log: options.log,
    });
    return new Spool(options, sync, found);
  }

  record(record: LlmRecord): Promise<void> {
    if (this.closed) return Promise.reject(new Error("the spool is closed"));
    const line = spoolLine(record);
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
    this.sync.seal(segment);
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
      this.sync.seal(segment);
      return fail(err as Error);
    }
    segment.size += data.length;
    segment.records += accepted.length;
    this.bytes += data.length;
    this.sync.written(
      segment,
      accepted.map((p) => p.done),
    );
    if (segment.size >= this.options.segmentBytes) this.sync.seal(segment);
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
    this.sync.add(segment);
    return segment;
  }

  /** Writes what is pending, syncs everything and closes the files. Segments stay for the next start. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    const last = this.segments.at(-1);
    if (last) this.sync.seal(last);
    await this.sync.close();
  }
}
