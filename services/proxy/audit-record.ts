import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import {
  AppendRequestSchema,
  RecordSchema,
  type AppendRequest,
} from "../../gen/airlock/audit/v1/audit_pb.js";
import type { SpooledRecord } from "./spool-line.js";
import { WireWriter } from "./wire-writer.js";

/**
 * Audit records of spooled proxy records, in protobuf's wire form (each
 * length first, as a repeated field's element goes on the wire), each one's
 * content the spooled JSON text as it is. A call's request and response
 * records share its interception id, so each gets a suffix for an id of its
 * own: audit stores records idempotently on that id, and a spool replayed
 * after a crash sends the same ids again.
 *
 * Written field by field rather than through `create` and `toBinary`: the
 * shipper encodes every record the proxy makes, and the generic path (a
 * message object, a Struct of Values for the attributes, reflection over
 * both) was a quarter of the proxy's CPU. Field numbers come from the
 * generated schema; audit-record.test.ts decodes what this writes with the
 * generic decoder.
 *
 * A batch's records go into one buffer, each record a view of it: an array
 * of its own per record was a fifth of the encoding's time, and each is
 * memory for the garbage collector to track until audit has the batch.
 */
export class RecordsWire {
  private readonly w = new WireWriter();
  private readonly ends: number[] = [];

  /** Adds a record; one that cannot be written leaves nothing behind. */
  add(record: SpooledRecord): void {
    const start = this.w.length;
    try {
      write(this.w.fork(), record).join();
    } catch (err) {
      this.w.truncate(start);
      throw err;
    }
    this.ends.push(this.w.length);
  }

  /** The records added since the last take, each in wire form, as views of one array. */
  take(): Uint8Array[] {
    const all = this.w.finish();
    let start = 0;
    const records = this.ends.map((end) => all.subarray(start, (start = end)));
    this.w.truncate();
    this.ends.length = 0;
    return records;
  }
}

function write(w: WireWriter, { meta: r, contentJson }: SpooledRecord): WireWriter {
  const request = r.kind === "llm.request";
  text(w, f.id, `${r.id}.${request ? "request" : "response"}`);
  text(w, f.kind, r.kind);
  timestamp(w, f.time, Date.parse(r.time));
  text(w, f.orgId, r.orgId);
  text(w, f.actor, r.principalId);
  text(w, f.actorKind, r.principalKind);
  text(w, f.action, "invoke");
  if (!request) text(w, f.status, r.status);
  text(w, f.sessionId, r.sessionId);
  text(w, f.interceptionId, r.id);
  text(w, f.workspace, r.workspace);
  for (const repository of r.repositories) w.tag(f.repositories, ld).string(repository);
  text(w, f.userAgent, r.userAgent);
  text(w, f.provider, r.provider);
  text(w, f.model, r.model);
  for (const tool of r.toolNames) w.tag(f.toolNames, ld).string(tool);
  if (!request) {
    w.tag(f.usage, ld).fork();
    int(w, usage.inputTokens, r.usage.inputTokens);
    int(w, usage.outputTokens, r.usage.outputTokens);
    int(w, usage.cacheReadTokens, r.usage.cacheReadTokens);
    int(w, usage.cacheWriteTokens, r.usage.cacheWriteTokens);
    int(w, usage.reasoningTokens, r.usage.reasoningTokens);
    w.join();
    // Rounded up: a whole number of milliseconds that is never shorter than the time to first byte.
    int(w, f.latencyMs, Math.ceil(r.latencyMs));
  }
  // The attributes, a Struct, entry by entry (an object to hold them first costs more than all the rest).
  w.tag(f.attributes, ld).fork();
  entry(w, "api", r.api);
  entry(w, "endpoint", r.endpoint);
  entry(w, "stream", r.stream);
  if (request) {
    entry(w, "removedTools", r.removedTools);
  } else {
    entry(w, "httpStatus", r.httpStatus);
    entry(w, "upstreamModel", r.upstreamModel);
    entry(w, "attempts", r.attempts);
    entry(w, "ttfbMs", r.ttfbMs);
    entry(w, "stopReason", r.stopReason);
    entry(w, "error", r.error);
  }
  w.join();
  // A string's wire form is its UTF-8 bytes, as a bytes field's is.
  return w.tag(f.contentJson, ld).string(contentJson);
}

/**
 * An Append carrying records already in wire form. They ride as the
 * request's unknown fields under the number of `records`, which puts on the
 * wire exactly what a `records` list would.
 */
export function appendOf(records: readonly Uint8Array[]): AppendRequest {
  const request = create(AppendRequestSchema);
  request.$unknown = records.map((data) => ({ no: recordsField, wireType: ld, data }));
  return request;
}

const ld = WireType.LengthDelimited;

function numbers<K extends string>(fields: readonly { localName: string; number: number }[]) {
  return Object.fromEntries(fields.map((d) => [d.localName, d.number])) as Record<K, number>;
}

const f = numbers<keyof typeof RecordSchema.field>(RecordSchema.fields);
const usage = numbers<
  "inputTokens" | "outputTokens" | "cacheReadTokens" | "cacheWriteTokens" | "reasoningTokens"
>(RecordSchema.field.usage.message!.fields);
const recordsField = AppendRequestSchema.field.records.number;

/** Proto3 leaves a field at its default (empty, zero) off the wire. */
function text(w: WireWriter, no: number, value: string): void {
  if (value !== "") w.tag(no, ld).string(value);
}

function int(w: WireWriter, no: number, value: number): void {
  if (value !== 0) w.tag(no, WireType.Varint).int64(value);
}

/** google.protobuf.Timestamp: seconds = 1, nanos = 2. */
function timestamp(w: WireWriter, no: number, ms: number): void {
  const seconds = Math.floor(ms / 1000);
  w.tag(no, ld).fork();
  int(w, 1, seconds);
  const nanos = (ms - seconds * 1000) * 1_000_000;
  if (nanos !== 0) w.tag(2, WireType.Varint).int64(nanos);
  w.join();
}

/** google.protobuf.Struct: map<string, Value> fields = 1. */
function struct(w: WireWriter, object: JsonObject): void {
  w.fork();
  for (const key in object) entry(w, key, object[key]);
  w.join();
}

/** One entry of a Struct's map (key = 1, value = 2); none for undefined, as JSON has none. */
function entry(w: WireWriter, key: string, value: JsonValue | undefined): void {
  if (value === undefined) return;
  w.tag(1, ld).fork().tag(1, ld).string(key);
  jsonValue(w.tag(2, ld), value);
  w.join();
}

/**
 * google.protobuf.Value: null_value = 1, number_value = 2, string_value = 3,
 * bool_value = 4, struct_value = 5, list_value = 6 (ListValue: repeated
 * Value values = 1).
 */
function jsonValue(w: WireWriter, v: JsonValue): void {
  w.fork();
  if (v === null) w.tag(1, WireType.Varint).int64(0);
  else if (typeof v === "number") w.tag(2, WireType.Bit64).double(v);
  else if (typeof v === "string") w.tag(3, ld).string(v);
  else if (typeof v === "boolean") w.tag(4, WireType.Varint).bool(v);
  else if (Array.isArray(v)) {
    w.tag(6, ld).fork();
    for (const item of v) jsonValue(w.tag(1, ld), item);
    w.join();
  } else struct(w.tag(5, ld), v);
  w.join();
}
