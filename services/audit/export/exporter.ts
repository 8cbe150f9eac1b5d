import type { Logger } from "../../kit/log.js";
import type { ExportMetrics } from "./metrics.js";
import { toOcsf } from "./ocsf.js";
import { DeliveryError, type Sink } from "./sink.js";
import {
  advance,
  after,
  lagOf,
  type ExportCursor,
  type ExportCursors,
  type ExportSource,
} from "./source.js";

/** Waits between failed attempts: doubling from `minMs` up to `maxMs`. */
export interface Backoff {
  minMs: number;
  maxMs: number;
}

/** Where a sink that has no saved cursor begins: the oldest stored record, or the next new one. */
export type ExportStart = "oldest" | "now";

export interface SinkExporterOptions {
  /** Names the sink in logs and metrics, and keys its cursor. */
  name: string;
  sink: Sink;
  source: ExportSource;
  cursors: ExportCursors;
  log: Logger;
  metrics: ExportMetrics;
  batchSize: number;
  /** How often to look for new records when nobody calls wake(). */
  intervalMs: number;
  includeContent: boolean;
  start: ExportStart;
  backoff: Backoff;
  /** How long stop() lets a delivery under way finish before cutting it off. */
  drainMs: number;
}

// A receiver asking for more than this is taken to mean "later", not "in a day".
const maxRetryAfterMs = 15 * 60_000;

class Stopped extends Error {}

/**
 * Delivers the audit log to one sink, in chain order, from its own saved
 * cursor. The cursor moves only after the sink acknowledged a whole batch,
 * and a failed batch is retried, with backoff, until it goes through: a
 * receiver that is down holds the export back rather than losing records.
 * A crash between the acknowledgement and the cursor's save sends that one
 * batch again (at least once); nothing behind a saved cursor is ever sent
 * again.
 */
export class SinkExporter {
  private cursor: ExportCursor = {};
  private woken = false;
  private wakeIdle: (() => void) | undefined;
  private stopping = false;
  // Ends waits (idle, backoff) at once on stop.
  private readonly stopped = new AbortController();
  // Cuts off a delivery under way once stop() has waited drainMs for it.
  private readonly cutOff = new AbortController();
  private running: Promise<void> | undefined;

  constructor(private readonly options: SinkExporterOptions) {}

  start(): void {
    this.running ??= this.run().catch((err: unknown) => {
      if (err instanceof Stopped) return;
      this.options.log.error(
        { sink: this.options.name, err: (err as Error).message },
        "audit export stopped",
      );
    });
  }

  /** New records are stored: look now instead of at the next interval. */
  wake(): void {
    this.woken = true;
    this.wakeIdle?.();
  }

  /** Stops after the delivery under way (or drainMs), saving its cursor if it was acknowledged. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopped.abort();
    this.wakeIdle?.();
    const timer = setTimeout(() => this.cutOff.abort(), this.options.drainMs);
    try {
      await this.running;
    } finally {
      clearTimeout(timer);
      await this.options.sink.close();
    }
  }

  private async run(): Promise<void> {
    const { name, source, sink, cursors, metrics, batchSize, includeContent } = this.options;
    this.cursor = await this.attempt("read", () => this.initialCursor());
    while (!this.stopping) {
      this.woken = false;
      const read = await this.attempt("read", () =>
        source.readAfter(this.cursor, batchSize, { content: includeContent }),
      );
      // Whatever the source returns, nothing behind the cursor goes out again.
      const records = after(this.cursor, read);
      if (records.length === 0) {
        metrics.pending(name, undefined);
        await this.updateLag();
        // A wake() during the read may be for a record the read just missed.
        if (!this.woken) await this.idle();
        continue;
      }
      const events = records.map((r) => toOcsf(r, { includeContent }));
      metrics.pending(name, Math.min(...events.map((e) => e.time)));
      await this.attempt("deliver", () => sink.send(events, this.cutOff.signal));
      const next = advance(this.cursor, records);
      // Acknowledged: save even while stopping, or the batch would go out again on restart.
      await this.attempt("save", () => cursors.save(name, next), { evenWhenStopping: true });
      this.cursor = next;
      metrics.exported.inc({ sink: name }, records.length);
      await this.updateLag();
    }
  }

  private async initialCursor(): Promise<ExportCursor> {
    const saved = await this.options.cursors.load(this.options.name);
    if (saved) return saved;
    if (this.options.start === "oldest") return {};
    // Saved at once: a restart before the first delivery must not move "now" past records.
    const heads = await this.options.source.heads();
    await this.options.cursors.save(this.options.name, heads);
    return heads;
  }

  private async updateLag(): Promise<void> {
    try {
      const heads = await this.options.source.heads();
      this.options.metrics.lagRecords.set({ sink: this.options.name }, lagOf(this.cursor, heads));
    } catch (err) {
      this.options.log.debug({ sink: this.options.name, err: (err as Error).message }, "no lag");
    }
  }

  /** Runs `work` until it succeeds, backing off between failures; throws Stopped on stop. */
  private async attempt<T>(
    stage: "read" | "deliver" | "save",
    work: () => Promise<T>,
    { evenWhenStopping = false } = {},
  ): Promise<T> {
    const { name, log, metrics, backoff } = this.options;
    for (let failures = 0; ; failures++) {
      if (this.stopping && !(evenWhenStopping && failures === 0)) throw new Stopped();
      try {
        const result = await work();
        if (failures > 0) log.info({ sink: name, stage, failures }, "audit export recovered");
        return result;
      } catch (err) {
        metrics.failures.inc({ sink: name, stage });
        const retryAfter = err instanceof DeliveryError ? err.retryAfterMs : undefined;
        const delay =
          retryAfter !== undefined
            ? Math.min(retryAfter, maxRetryAfterMs)
            : jittered(Math.min(backoff.maxMs, backoff.minMs * 2 ** Math.min(failures, 30)));
        log.warn(
          {
            sink: name,
            stage,
            failures: failures + 1,
            retryInMs: delay,
            err: (err as Error).message,
          },
          "audit export attempt failed",
        );
        await this.sleep(delay);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.stopped.signal.aborted) return reject(new Stopped());
      const onStop = () => (clearTimeout(timer), reject(new Stopped()));
      const timer = setTimeout(() => {
        this.stopped.signal.removeEventListener("abort", onStop);
        resolve();
      }, ms);
      this.stopped.signal.addEventListener("abort", onStop, { once: true });
    });
  }

  private idle(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeIdle = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.options.intervalMs);
      this.wakeIdle = done;
      if (this.stopping) done();
    });
  }
}

// Half fixed, half random, so that many exporters failing together do not retry in step.
function jittered(ms: number): number {
  return Math.round(ms / 2 + (Math.random() * ms) / 2);
}
