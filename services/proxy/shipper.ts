import { appendFile } from "node:fs/promises";
import { setImmediate as yieldToCalls } from "node:timers/promises";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { Registry } from "prom-client";
import type { AuditService } from "../../gen/airlock/audit/v1/audit_pb.js";
import type { Logger } from "../kit/log.js";
import { appendOf, RecordsWire } from "./audit-record.js";
import { readLines } from "./segment-reader.js";
import { shipperMetrics, type ShipperMetrics } from "./shipper-metrics.js";
import { parseSpoolLine } from "./spool-line.js";
import type { Spool } from "./spool.js";

export interface ShipperOptions {
  spool: Spool;
  audit: Client<typeof AuditService>;
  log: Logger;
  registry: Registry;
  /**
   * Where records that can never be stored go (unreadable lines, records
   * audit refuses for what they hold): kept on disk for an operator, and out of the
   * way of the records behind them.
   */
  rejectedPath: string;
  /** Records per Append; 500 by default. */
  batchRecords?: number;
  /** Bytes of spooled JSON per Append (one record may exceed it); 4 MiB by default. */
  batchBytes?: number;
  /** The first wait after a failed Append, doubled per failure up to `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * A segment still being written is deleted once shipped only when it is
   * at least this old, so a quiet proxy does not make and delete a file per
   * call, and shipped prompts do not stay on disk for long either.
   */
  rotateAfterMs?: number;
  /**
   * How long to let records gather before reading a batch, when the last
   * read took all there was (or the spool was idle): under steady traffic,
   * one Append (one audit transaction) per this many milliseconds instead of
   * one per round trip. A backlog is sent without waiting. 20 ms by default.
   */
  lingerMs?: number;
}

const refusedForGood = new Set([Code.InvalidArgument, Code.ResourceExhausted]);
/**
 * Records read and encoded between two turns of the event loop: about a
 * tenth of a millisecond of work, so a call that arrives meanwhile is not
 * held up for a whole batch's (a millisecond or more).
 */
const yieldEvery = 8;

interface Batch {
  seq: number;
  end: number;
  /** It took every record written to its segment so far. */
  caughtUp: boolean;
  /** Lines read, `records` and `unreadable` together. */
  lines: number;
  /** The records in protobuf's wire form. */
  records: Uint8Array[];
  /** The spooled line of each record, kept in case audit refuses it. */
  sources: string[];
  unreadable: string[];
}

/**
 * Sends spooled records to audit `Append` in batches, in spool order, and
 * deletes a segment once audit has acknowledged all of it. It reads from the
 * segment files, never from memory, so an audit outage costs disk, not
 * memory; a failed Append is retried with capped backoff, and nothing is
 * dropped. Audit stores records idempotently on their ids, so segments left
 * by a previous process are simply sent again.
 */
export class Shipper {
  /** The next byte to ship; `records` counts the lines before it in its segment. */
  private cursor = { seq: 0, offset: 0, records: 0 };
  private readonly abort = new AbortController();
  private stopping = false;
  private written = false;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;
  private failures = 0;
  /** After audit refused a batch for what it holds: one record per Append up to here, to find the culprit. */
  private singleUntil: { seq: number; offset: number } | undefined;
  private readonly metrics: ShipperMetrics;
  private readonly batchRecords: number;
  private readonly batchBytes: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly rotateAfterMs: number;
  /** The batch being read; `next` takes it whole (nothing between its first add and the take throws). */
  private readonly wire = new RecordsWire();

  constructor(private readonly options: ShipperOptions) {
    this.batchRecords = options.batchRecords ?? 500;
    this.batchBytes = options.batchBytes ?? 4 * 1024 * 1024;
    this.minBackoffMs = options.minBackoffMs ?? 50;
    this.maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.rotateAfterMs = options.rotateAfterMs ?? 1000;
    this.metrics = shipperMetrics(options.registry, {
      spoolBytes: () => options.spool.totalBytes,
      pending: () => this.pending(),
    });
  }

  /** Starts shipping, with whatever the spool holds from before. */
  start(): void {
    this.unsubscribe = this.options.spool.onWrite(() => {
      this.written = true;
      this.wake?.();
    });
    this.running = this.run();
  }

  /**
   * Ships what the spool holds for at most `graceMs`, then stops; what is
   * left stays on disk for the next start.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.wake?.();
    const timer = setTimeout(() => this.abort.abort(), graceMs);
    await this.running;
    clearTimeout(timer);
    this.unsubscribe?.();
    const left = this.pending();
    if (left.records > 0) {
      this.options.log.warn(left, "audit records left in the spool for the next start");
    }
  }

  /** Bytes and records in the spool that audit has not acknowledged. */
  pending(): { bytes: number; records: number } {
    let bytes = 0;
    let records = 0;
    for (const s of this.options.spool.view()) {
      const at = s.seq === this.cursor.seq ? this.cursor : { offset: 0, records: 0 };
      bytes += s.size - at.offset;
      records += s.records - at.records;
    }
    return { bytes, records };
  }

  private async run(): Promise<void> {
    while (!this.abort.signal.aborted) {
      let batch: Batch | undefined;
      try {
        batch = await this.next();
        if (!batch) {
          if (this.stopping) return;
          await this.idle();
          if (!this.stopping) await this.linger();
          continue;
        }
        if (batch.records.length) {
          await this.options.audit.append(appendOf(batch.records), {
            signal: this.abort.signal,
          });
        }
      } catch (err) {
        if (this.abort.signal.aborted) return;
        // Refused for what it holds (invalid, or too large for a message): sending it again cannot help.
        if (batch && refusedForGood.has(ConnectError.from(err).code)) {
          if (batch.records.length > 1) {
            this.singleUntil = { seq: batch.seq, offset: batch.end };
            continue;
          }
          this.options.log.error(
            { err: ConnectError.from(err).rawMessage, ...refusedRecord(batch.sources[0]!) },
            "audit refused a record; it is kept in the rejected file",
          );
          await this.advance(batch, true).catch((e: Error) => this.retryLater(e));
          continue;
        }
        await this.retryLater(err as Error);
        continue;
      }
      await this.advance(batch).catch((e: Error) => this.retryLater(e));
      // Shipping again at once would send, per Append, only what was written during the last
      // one's round trip: at a steady trickle, hundreds of tiny Appends (and audit
      // transactions) a second, taking the CPU the calls need.
      if (batch.caughtUp && !this.stopping) await this.linger();
    }
  }

  /** The next records to send from the cursor, deleting segments that are all shipped on the way. */
  private async next(): Promise<Batch | undefined> {
    this.written = false;
    const { spool } = this.options;
    for (;;) {
      const segment = spool.view().find((s) => s.seq >= this.cursor.seq);
      if (!segment) return undefined;
      if (segment.seq !== this.cursor.seq)
        this.cursor = { seq: segment.seq, offset: 0, records: 0 };
      // What is written while the read runs waits for the next one.
      const written = segment.size;
      if (this.cursor.offset < written) {
        const single =
          this.singleUntil?.seq === segment.seq && this.cursor.offset < this.singleUntil.offset;
        const read = await readLines(
          segment.path,
          this.cursor.offset,
          written,
          single ? 1 : this.batchRecords,
          this.batchBytes,
        ).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== "ENOENT") throw err;
          // Deleted by hand: nothing left to ship from it, and waiting would stop the rest.
          this.options.log.error(
            { path: segment.path },
            "spool segment vanished before it was shipped",
          );
          return undefined;
        });
        if (!read) {
          await spool.release(segment.seq, segment.size);
          continue;
        }
        const sources: string[] = [];
        const unreadable: string[] = [];
        for (const [i, line] of read.lines.entries()) {
          // Calls wait while this runs: let them in between every few records.
          if (i > 0 && i % yieldEvery === 0) await yieldToCalls();
          try {
            this.wire.add(parseSpoolLine(line));
            sources.push(line);
          } catch {
            unreadable.push(line);
          }
        }
        return {
          seq: segment.seq,
          end: read.end,
          caughtUp: read.end >= written,
          lines: read.lines.length,
          records: this.wire.take(),
          sources,
          unreadable,
        };
      }
      const idleFor = Date.now() - segment.openedAt;
      if (!(segment.sealed || idleFor >= this.rotateAfterMs)) return undefined;
      if (!(await spool.release(segment.seq, this.cursor.offset))) return undefined;
    }
  }

  /** Moves the cursor past an acknowledged (or `refused`) batch, setting aside what cannot be stored. */
  private async advance(batch: Batch, refused = false): Promise<void> {
    const aside = refused ? [...batch.unreadable, ...batch.sources] : batch.unreadable;
    if (aside.length) {
      await appendFile(this.options.rejectedPath, aside.join("\n") + "\n", { mode: 0o600 });
      if (batch.unreadable.length) {
        this.metrics.rejected.inc({ reason: "unreadable" }, batch.unreadable.length);
        this.options.log.error(
          { count: batch.unreadable.length, segment: batch.seq },
          "unreadable lines in the spool; they are kept in the rejected file",
        );
      }
      if (refused) this.metrics.rejected.inc({ reason: "refused" }, batch.records.length);
    }
    this.cursor = { seq: batch.seq, offset: batch.end, records: this.cursor.records + batch.lines };
    if (this.singleUntil?.seq === batch.seq && batch.end >= this.singleUntil.offset) {
      this.singleUntil = undefined;
    }
    if (!refused && batch.records.length) {
      this.metrics.shipped.inc(batch.records.length);
      if (this.failures > 0) {
        this.options.log.info({ failures: this.failures }, "audit append works again");
      }
      this.failures = 0;
    }
  }

  private async retryLater(err: Error): Promise<void> {
    this.failures++;
    this.metrics.failed.inc();
    if (this.failures === 1) {
      this.options.log.warn(
        { err: ConnectError.from(err).rawMessage },
        "cannot ship audit records; they wait in the spool",
      );
    }
    const wait = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** (this.failures - 1));
    // Jitter, so that proxies cut off together do not call a recovering audit service in step.
    await this.sleep(wait * (0.8 + Math.random() * 0.4));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.abort.signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Waits for a write, for the stop, or for the segment being written to be old enough to delete. */
  private linger(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, this.options.lingerMs ?? 20);
      this.abort.signal.addEventListener("abort", done, { once: true });
    });
  }

  private idle(): Promise<void> {
    if (this.written) return Promise.resolve();
    const active = this.options.spool.view().at(-1);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        this.abort.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer =
        active && !active.sealed
          ? setTimeout(done, Math.max(0, active.openedAt + this.rotateAfterMs - Date.now()) + 1)
          : undefined;
      this.wake = done;
      this.abort.signal.addEventListener("abort", done, { once: true });
    });
  }
}

/** What names a record audit refused, for the log (never its content). */
function refusedRecord(line: string): { interceptionId: string; kind: string } {
  const { meta } = parseSpoolLine(line);
  return { interceptionId: meta.id, kind: meta.kind };
}
