import type { Endpoint } from "./collect.js";
import {
  JsonText,
  type LlmRecord,
  type LlmRequestRecord,
  type LlmResponseRecord,
} from "./records.js";
import { offeredTools } from "./tools.js";

/** A record as the shipper reads it back: its metadata, and its content as JSON text. */
export interface SpooledRecord {
  meta: Omit<LlmRequestRecord, "content"> | Omit<LlmResponseRecord, "content">;
  contentJson: string;
}

/**
 * One spool line: the metadata as JSON, a tab, the content as JSON. Neither
 * JSON text holds a raw tab or newline (JSON.stringify escapes them, and a
 * caller's own text has them made spaces), so the line splits without
 * parsing the content, and the shipper sends the
 * content's text to audit as it is, never decoding or re-encoding it.
 */
export function spoolLine(record: LlmRecord): string {
  const { content, ...meta } = record;
  const contentJson =
    "body" in content && content.body instanceof JsonText
      ? `{"body":${oneLine(content.body.text)}}`
      : JSON.stringify(content);
  return `${JSON.stringify(meta)}\t${contentJson}\n`;
}

/**
 * Valid JSON text on one line. JSON has no raw tab, CR or LF inside a
 * string, so outside one they are only whitespace, and spaces do as well.
 * (`includes` first: it scans a long prompt many times faster than a regex.)
 */
function oneLine(json: string): string {
  if (!json.includes("\n") && !json.includes("\t") && !json.includes("\r")) return json;
  return json.replace(/[\t\n\r]/g, " ");
}

/** Reads a line back (without its newline); throws when it is not one. */
export function parseSpoolLine(line: string): SpooledRecord {
  const tab = line.indexOf("\t");
  if (tab !== -1)
    return {
      meta: JSON.parse(line.slice(0, tab)) as SpooledRecord["meta"],
      contentJson: line.slice(tab + 1),
    };
  // Spooled by an earlier version (one JSON object, no tool names on requests) and left
  // for this one to ship after an upgrade.
  const { content, ...meta } = JSON.parse(line) as LlmRecord;
  if (meta.kind === "llm.request" && !meta.toolNames) {
    const body = (content as LlmRequestRecord["content"]).body;
    meta.toolNames =
      body && typeof body === "object" && !Array.isArray(body)
        ? offeredTools(meta.endpoint as Endpoint, body as Record<string, unknown>)
        : [];
  }
  return { meta, contentJson: JSON.stringify(content) };
}
