import { closeSync, fdatasync, fsync, type NoParamCallback } from "node:fs";
import type { Logger } from "../kit/log.js";

/** `interval`: fdatasync in the background every few milliseconds; `always`: before a write counts as done. */
export type SyncMode = "interval" | "always";

/** A file being written, as the syncer tracks it. */
export interface SyncedFile {
  readonly path: string;
  /** -1 once closed. */
  fd: number;
  /** Bytes written. */
  size: number;
  /** No more writes: the file is closed once they are synced. */
  sealed: boolean;
  /** Bytes known to be on disk. */
  syncedSize: number;
  /** Its directory entry is on disk: a new file is lost on power failure until the directory is synced. */
  linked: boolean;
}

export interface GroupSyncOptions {
  mode: SyncMode;
  intervalMs: number;
  /** The directory holding the files, open for reading (its entries are synced through it). */
  dirFd: number;
  log: Logger;
}

const promised = (run: (cb: NoParamCallback) => void) =>
  new Promise<void>((resolve, reject) => run((err) => (err ? reject(err) : resolve())));

/**
 * Makes written files durable with fdatasync in the thread pool, one sync
 * for every write since the last one (group commit): in `interval` mode on
 * a timer, off the path of the writes; in `always` mode at once, with each
 * write's callers waiting for the sync that covers it.
 */
export class GroupSync {
  /** Files still open: the one being written, and sealed ones until their last sync. */
  private readonly open = new Set<SyncedFile>();
  private waiters: { file: SyncedFile; upTo: number; done: (err?: Error) => void }[] = [];
  private syncing: Promise<void> | undefined;
  private again = false;
  /** Written since the last sync began. */
  private dirty = false;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: GroupSyncOptions) {
    if (options.mode === "interval") {
      this.timer = setInterval(() => this.dirty && this.request(), options.intervalMs).unref();
    }
  }

  /** A new file, written from now on. */
  add(file: SyncedFile): void {
    this.open.add(file);
  }

  /** `file` grew by a write made for `done`: in `always` mode they are called after its sync. */
  written(file: SyncedFile, done: ((err?: Error) => void)[]): void {
    this.dirty = true;
    if (this.options.mode === "interval") return done.forEach((d) => d());
    for (const d of done) this.waiters.push({ file, upTo: file.size, done: d });
    this.request();
  }

  /** No more writes to `file`; it is closed once what was written is synced. */
  seal(file: SyncedFile): void {
    if (file.sealed) return;
    file.sealed = true;
    this.request();
  }

  /** Syncs and closes every file (all must be sealed) and the directory. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.request();
    while (this.syncing) await this.syncing;
    closeSync(this.options.dirFd);
  }

  private request(): void {
    if (this.syncing) {
      this.again = true;
      return;
    }
    this.syncing = (async () => {
      do {
        this.again = false;
        await this.syncOnce();
      } while (this.again);
    })().finally(() => (this.syncing = undefined));
  }

  /**
   * Every open file's writes since the last sync, then new directory
   * entries. A file already deleted is synced too when a write to it still
   * waits for its sync: its records may be shipped before they are synced.
   */
  private async syncOnce(): Promise<void> {
    this.dirty = false;
    const open = [...this.open];
    const failed = new Map<SyncedFile, Error>();
    for (const file of open) {
      const upTo = file.size;
      if (upTo === file.syncedSize) continue;
      await promised((cb) => fdatasync(file.fd, cb)).then(
        () => (file.syncedSize = upTo),
        (err: Error) => failed.set(file, err),
      );
    }
    const unlinked = open.filter((f) => !f.linked);
    if (unlinked.length) {
      await promised((cb) => fsync(this.options.dirFd, cb)).then(
        () => unlinked.forEach((f) => (f.linked = true)),
        (err: Error) => unlinked.forEach((f) => failed.set(f, err)),
      );
    }
    for (const [file, err] of failed) {
      // After a failed fdatasync the kernel may have dropped the pages: nothing more goes to this file.
      this.options.log.error({ err: err.message, path: file.path }, "spool sync failed");
      file.sealed = true;
    }
    this.waiters = this.waiters.filter((w) => {
      const err = failed.get(w.file);
      if (err) w.done(err);
      else if (w.file.linked && w.file.syncedSize >= w.upTo) w.done();
      else return true;
      return false;
    });
    for (const file of open) {
      if (file.sealed && (failed.has(file) || file.syncedSize === file.size)) {
        closeSync(file.fd);
        file.fd = -1;
        this.open.delete(file);
      }
    }
  }
}
