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
 */
export class SseParser {
  // Node's own UTF-8 decoder: TextDecoder's streaming mode goes through ICU, several times slower.
  private readonly decoder = new StringDecoder("utf8");
  private buffer = "";

  push(chunk: Uint8Array, onEvent: (event: SseEvent) => void): void {
    const text = this.buffer + this.decoder.write(chunk);
    let start = 0;
    // An event ends at an empty line: LF then LF or CRLF. One cut short waits for the next chunk.
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", nl + 1)) {
      const next = text.charCodeAt(nl + 1);
      let after: number;
      if (next === LF) after = nl + 2;
      else if (next === CR && text.charCodeAt(nl + 2) === LF) after = nl + 3;
      else continue;
      const parsed = parseBlock(text, start, nl);
      if (parsed) onEvent(parsed);
      start = after;
      nl = after - 1;
    }
    this.buffer = start === 0 ? text : text.slice(start);
  }
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
