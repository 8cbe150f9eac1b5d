import { StringDecoder } from "node:string_decoder";

/** One server-sent event. */
export interface SseEvent {
  event: string;
  data: string;
}

const LF = 10;
const CR = 13;
const SPACE = 32;

/**
 * Splits a byte stream into server-sent events as chunks arrive, whatever
 * the chunk boundaries (an event, a line or a UTF-8 character may be cut).
 * Lines end in LF or CRLF. It runs on every chunk of every streamed answer,
 * so it reads each chunk's text in one pass, by index: re-slicing the rest
 * of the text after each event made a chunk of n events cost n copies.
 * Text after the last whole event is kept in the pieces it came in and
 * joined once an event in it ends: joined and searched on every chunk, a
 * 4 MiB event in 16 KiB chunks took half a second of the event loop.
 */
export class SseParser {
  // Node's own UTF-8 decoder: TextDecoder's streaming mode goes through ICU, several times slower.
  private readonly decoder = new StringDecoder("utf8");
  /** The text after the last whole event, in the pieces it came in. */
  private rest: string[] = [];
  /** The last two characters of `rest`: an empty line may start in them. */
  private restEnd = "";

  push(chunk: Uint8Array, onEvent: (event: SseEvent) => void): void {
    const piece = this.decoder.write(chunk);
    this.rest.push(piece);
    // Only the new piece, with what comes just before it, can end the event that waits.
    if (this.rest.length > 1 && nextEmptyLine(this.restEnd + piece, 0) < 0) {
      this.restEnd = (this.restEnd + piece).slice(-2);
      return;
    }
    const text = this.rest.length === 1 ? piece : this.rest.join("");
    let start = 0;
    for (let nl = nextEmptyLine(text, 0); nl >= 0; nl = nextEmptyLine(text, start)) {
      const parsed = parseBlock(text, start, nl);
      if (parsed) onEvent(parsed);
      start = nl + (text.charCodeAt(nl + 1) === LF ? 2 : 3);
    }
    const left = text.slice(start);
    this.rest = left ? [left] : [];
    this.restEnd = left.slice(-2);
  }
}

/**
 * The LF at which the first empty line from `from` starts (LF then LF or
 * CRLF), or -1. One cut short at the end of `text` is not counted yet.
 */
function nextEmptyLine(text: string, from: number): number {
  for (let nl = text.indexOf("\n", from); nl >= 0; nl = text.indexOf("\n", nl + 1)) {
    const next = text.charCodeAt(nl + 1);
    if (next === LF || (next === CR && text.charCodeAt(nl + 2) === LF)) return nl;
  }
  return -1;
}

/** The event in `text` from `from` to `to`: its `event:` name and its `data:` lines joined by LF. */
function parseBlock(text: string, from: number, to: number): SseEvent | undefined {
  let event = "message";
  let data: string | undefined;
  while (from < to) {
    let eol = text.indexOf("\n", from);
    if (eol < 0 || eol > to) eol = to;
    const end = eol > from && text.charCodeAt(eol - 1) === CR ? eol - 1 : eol;
    if (text.startsWith("data:", from)) {
      const value = text.slice(from + (text.charCodeAt(from + 5) === SPACE ? 6 : 5), end);
      data = data === undefined ? value : `${data}\n${value}`;
    } else if (text.startsWith("event:", from)) {
      event = text.slice(from + 6, end).trim();
    }
    from = eol + 1;
  }
  return data === undefined ? undefined : { event, data };
}
