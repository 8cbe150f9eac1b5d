import { open } from "node:fs/promises";

/** Lines read from a segment, and the offset just past the last of them. */
export interface ReadLines {
  lines: string[];
  end: number;
}

/**
 * Reads whole lines of `path` from offset `from`, without reading past `to`:
 * at most `maxLines`, and no more than `maxBytes` unless the first line alone
 * is longer (a record is never split). Bytes at `to` after the last newline
 * (a record cut short by a power failure) come back as a line of their own;
 * a file that ends before `to` ends the read there.
 */
export async function readLines(
  path: string,
  from: number,
  to: number,
  maxLines: number,
  maxBytes: number,
): Promise<ReadLines> {
  const file = await open(path, "r");
  try {
    let want = Math.min(to - from, maxBytes);
    for (;;) {
      const buffer = Buffer.alloc(want);
      const { bytesRead } = await file.read(buffer, 0, want, from);
      if (bytesRead === 0) return { lines: [], end: to };
      const data = buffer.subarray(0, bytesRead);
      const lines: string[] = [];
      let start = 0;
      for (let nl = data.indexOf(10); nl !== -1 && lines.length < maxLines;) {
        lines.push(data.toString("utf8", start, nl));
        start = nl + 1;
        nl = data.indexOf(10, start);
      }
      const reachedEnd = bytesRead < want || from + want >= to;
      if (lines.length === 0 && !reachedEnd) {
        // One record longer than maxBytes: read on until its end.
        want = Math.min(to - from, want * 2);
        continue;
      }
      if (lines.length === 0 && start < bytesRead) {
        lines.push(data.toString("utf8", start, bytesRead));
        start = bytesRead;
      }
      return { lines, end: from + start };
    }
  } finally {
    await file.close();
  }
}

/** Lines in a file: records a previous process left to ship. */
export async function countLines(path: string): Promise<number> {
  const file = await open(path, "r");
  try {
    const buffer = Buffer.alloc(1 << 20);
    let lines = 0;
    let last = 10;
    for (let position = 0; ;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
      // A last line without its newline (cut short by a power failure) is read as a line too.
      if (bytesRead === 0) return last === 10 ? lines : lines + 1;
      for (let i = buffer.indexOf(10); i !== -1 && i < bytesRead; i = buffer.indexOf(10, i + 1))
        lines++;
      last = buffer[bytesRead - 1]!;
      position += bytesRead;
    }
  } finally {
    await file.close();
  }
}
