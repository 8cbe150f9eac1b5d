import { invalid } from "../kit/errors.js";

/**
 * Cursors are opaque to callers: base64url JSON with a version tag, so a
 * later release can change what is inside and still refuse old ones clearly.
 */
function encode(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

function decode(text: string, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    throw invalid(`${what}: not a cursor this service handed out`);
  }
}

/** Where a Query page ended: the last record's time and id. */
export function queryCursor(timeMs: number, id: string): string {
  return encode(["q1", timeMs, id]);
}

export function parseQueryCursor(text: string): { timeMs: number; id: string } {
  const v = decode(text, "cursor");
  if (!Array.isArray(v) || v[0] !== "q1" || typeof v[1] !== "number" || typeof v[2] !== "string")
    throw invalid("cursor: not a Query cursor");
  return { timeMs: v[1], id: v[2] };
}

/** Where a Tail stream is: the last position sent in the org's chain. */
export function tailCursor(chainId: string, seq: number): string {
  return encode(["t1", chainId, seq]);
}

export function parseTailCursor(text: string, chainId: string): number {
  const v = decode(text, "cursor");
  if (!Array.isArray(v) || v[0] !== "t1" || typeof v[2] !== "number")
    throw invalid("cursor: not a Tail cursor");
  if (v[1] !== chainId) throw invalid("cursor: from another org's stream");
  return v[2];
}
