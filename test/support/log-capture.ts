import { Writable } from "node:stream";

/** Collects every log line a runtime writes, for tests that read logs. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    done();
  }

  get text(): string {
    return this.lines.join("\n");
  }
}
