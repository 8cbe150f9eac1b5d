import { open, stat, type FileHandle } from "node:fs/promises";
import type { OcsfEvent } from "./ocsf.js";
import { DeliveryError, jsonLines, type Sink } from "./sink.js";

/**
 * JSON lines appended to a file. A batch counts as delivered once its bytes
 * are written and flushed to disk (fdatasync): the cursor is saved after
 * that, so a power failure cannot leave the cursor ahead of the file. The
 * file is reopened when it was moved or removed, so log rotation by
 * renaming (logrotate's default) works without a signal.
 */
export class FileSink implements Sink {
  private file: { handle: FileHandle; ino: number } | undefined;

  constructor(private readonly path: string) {}

  async send(events: readonly OcsfEvent[]): Promise<void> {
    try {
      const { handle } = await this.current();
      await handle.appendFile(jsonLines(events), "utf8");
      await handle.datasync();
    } catch (err) {
      await this.close();
      throw new DeliveryError(`append to ${this.path} failed: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    await file?.handle.close().catch(() => undefined);
  }

  private async current(): Promise<{ handle: FileHandle; ino: number }> {
    if (this.file) {
      const now = await stat(this.path).catch(() => undefined);
      if (now?.ino === this.file.ino) return this.file;
      await this.close();
    }
    const handle = await open(this.path, "a", 0o600);
    this.file = { handle, ino: (await handle.stat()).ino };
    return this.file;
  }
}
