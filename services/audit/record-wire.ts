import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { RecordSchema } from "../../gen/airlock/audit/v1/audit_pb.js";
import { invalid } from "../kit/errors.js";
import type { SentRecord } from "./convert.js";

const f = RecordSchema.field;

/**
 * Record's field numbers, from the generated schema, in one plain object:
 * read through the schema's field descriptors (objects of several shapes),
 * each `case` cost a generic property lookup per field decoded.
 */
const fieldNo = {
  id: f.id.number,
  kind: f.kind.number,
  time: f.time.number,
  orgId: f.orgId.number,
  actor: f.actor.number,
  actorKind: f.actorKind.number,
  action: f.action.number,
  subject: f.subject.number,
  status: f.status.number,
  sessionId: f.sessionId.number,
  interceptionId: f.interceptionId.number,
  workspace: f.workspace.number,
  repositories: f.repositories.number,
  userAgent: f.userAgent.number,
  provider: f.provider.number,
  model: f.model.number,
  toolNames: f.toolNames.number,
  usage: f.usage.number,
  latencyMs: f.latencyMs.number,
  attributes: f.attributes.number,
  content: f.content.number,
  contentJson: f.contentJson.number,
};

/**
 * A record as its writer encoded it, read straight from its wire form into
 * what `incomingRecord` checks. Append carries hundreds of records of a few
 * kilobytes: protobuf-es's generic decoder, building each Record message
 * field by field through reflection, cost audit more than checking and
 * storing them did. Proto3's rules hold: fields in any order, a singular
 * field sent twice keeps its last value (a message merges), unknown fields
 * are skipped. A field of the wrong wire type, or bytes that end early,
 * refuse the record, naming it.
 */
export function decodeRecord(bytes: Uint8Array, index: number): SentRecord {
  const where = `records[${index}]`;
  try {
    return readRecord(new BinaryReader(bytes));
  } catch (err) {
    if (err instanceof WireError) throw invalid(`${where}: ${err.message}`);
    // BinaryReader's own errors: a truncated or overlong value.
    throw invalid(`${where}: not a valid Record encoding (${(err as Error).message})`);
  }
}

class WireError extends Error {}

function readRecord(r: BinaryReader): SentRecord {
  // Proto3's defaults, overwritten by the fields present.
  const rec: SentRecord = {
    id: "",
    kind: "",
    time: undefined,
    orgId: "",
    actor: "",
    actorKind: "",
    action: "",
    subject: "",
    status: "",
    sessionId: "",
    interceptionId: "",
    workspace: "",
    repositories: [],
    userAgent: "",
    provider: "",
    model: "",
    toolNames: [],
    usage: undefined,
    latencyMs: 0n,
    attributes: undefined,
    content: undefined,
    contentJson: empty,
  };
  while (r.pos < r.len) {
    const [no, type] = r.tag();
    switch (no) {
      case fieldNo.id:
        rec.id = text(r, type, no);
        break;
      case fieldNo.kind:
        rec.kind = text(r, type, no);
        break;
      case fieldNo.time:
        rec.time = readTimestamp(r, within(r, type, no), rec.time);
        break;
      case fieldNo.orgId:
        rec.orgId = text(r, type, no);
        break;
      case fieldNo.actor:
        rec.actor = text(r, type, no);
        break;
      case fieldNo.actorKind:
        rec.actorKind = text(r, type, no);
        break;
      case fieldNo.action:
        rec.action = text(r, type, no);
        break;
      case fieldNo.subject:
        rec.subject = text(r, type, no);
        break;
      case fieldNo.status:
        rec.status = text(r, type, no);
        break;
      case fieldNo.sessionId:
        rec.sessionId = text(r, type, no);
        break;
      case fieldNo.interceptionId:
        rec.interceptionId = text(r, type, no);
        break;
      case fieldNo.workspace:
        rec.workspace = text(r, type, no);
        break;
      case fieldNo.repositories:
        rec.repositories.push(text(r, type, no));
        break;
      case fieldNo.userAgent:
        rec.userAgent = text(r, type, no);
        break;
      case fieldNo.provider:
        rec.provider = text(r, type, no);
        break;
      case fieldNo.model:
        rec.model = text(r, type, no);
        break;
      case fieldNo.toolNames:
        rec.toolNames.push(text(r, type, no));
        break;
      case fieldNo.usage:
        rec.usage = readUsage(r, within(r, type, no), rec.usage);
        break;
      case fieldNo.latencyMs:
        expect(type, WireType.Varint, no);
        rec.latencyMs = r.int64() as bigint;
        break;
      case fieldNo.attributes:
        rec.attributes = readStruct(r, within(r, type, no), rec.attributes ?? jsonObject(), 0);
        break;
      case fieldNo.content:
        rec.content = readStruct(r, within(r, type, no), rec.content ?? jsonObject(), 0);
        break;
      case fieldNo.contentJson:
        expect(type, WireType.LengthDelimited, no);
        rec.contentJson = r.bytes();
        break;
      default:
        // What the service sets (chain, seq, hashes) and fields from newer writers.
        r.skip(type, no);
    }
  }
  return rec;
}

const empty = new Uint8Array(0);

function expect(type: WireType, wanted: WireType, no: number): void {
  if (type !== wanted) throw new WireError(`field ${no} has wire type ${type}, expected ${wanted}`);
}

function text(r: BinaryReader, type: WireType, no: number): string {
  expect(type, WireType.LengthDelimited, no);
  // Strict, as protobuf-es reads proto3 strings: invalid UTF-8 is refused, not replaced.
  return r.string(true);
}

/** A length-delimited field's end: where its own fields stop. */
function within(r: BinaryReader, type: WireType, no: number): number {
  expect(type, WireType.LengthDelimited, no);
  const length = r.uint32();
  const end = r.pos + length;
  if (end > r.len) throw new WireError(`field ${no} runs past the record's end`);
  return end;
}

/** A nested message's last field must end where its length said it would. */
function ended(r: BinaryReader, end: number): void {
  if (r.pos !== end) throw new WireError("a nested message's fields run past its length");
}

/** google.protobuf.Timestamp: seconds = 1, nanos = 2; a repeated one merges into the first. */
function readTimestamp(
  r: BinaryReader,
  end: number,
  into: SentRecord["time"],
): NonNullable<SentRecord["time"]> {
  const ts = into ?? { seconds: 0n, nanos: 0 };
  while (r.pos < end) {
    const [no, type] = r.tag();
    if (no === 1) {
      expect(type, WireType.Varint, no);
      ts.seconds = r.int64() as bigint;
    } else if (no === 2) {
      expect(type, WireType.Varint, no);
      ts.nanos = r.int32();
    } else r.skip(type, no);
  }
  ended(r, end);
  return ts;
}

function readUsage(
  r: BinaryReader,
  end: number,
  into: SentRecord["usage"],
): NonNullable<SentRecord["usage"]> {
  const usage = into ?? {
    inputTokens: 0n,
    outputTokens: 0n,
    cacheReadTokens: 0n,
    cacheWriteTokens: 0n,
    reasoningTokens: 0n,
  };
  while (r.pos < end) {
    const [no, type] = r.tag();
    const key = usageKeys.get(no);
    if (key === undefined) {
      r.skip(type, no);
      continue;
    }
    expect(type, WireType.Varint, no);
    usage[key] = r.int64() as bigint;
  }
  ended(r, end);
  return usage;
}

/** Usage's field numbers to their names; every one is an int64. */
const usageKeys = new Map(
  f.usage.message!.fields.map((d) => [
    d.number,
    d.localName as keyof NonNullable<SentRecord["usage"]>,
  ]),
);

/** Deeper than this, a Struct is refused rather than risk the stack. */
const maxDepth = 64;

/**
 * google.protobuf.Struct as the JSON object it stands for: `fields` (1) is a
 * map of entries with key = 1 and value = 2. The object has no prototype, so
 * a key like "__proto__" is just a key.
 */
function readStruct(r: BinaryReader, end: number, into: JsonObject, depth: number): JsonObject {
  if (depth > maxDepth) throw new WireError(`a Struct nests deeper than ${maxDepth} levels`);
  while (r.pos < end) {
    const [no, type] = r.tag();
    if (no !== 1) {
      r.skip(type, no);
      continue;
    }
    const entryEnd = within(r, type, no);
    let key = "";
    let value: JsonValue = null;
    while (r.pos < entryEnd) {
      const [n, t] = r.tag();
      if (n === 1) key = text(r, t, n);
      else if (n === 2) value = readValue(r, within(r, t, n), depth + 1);
      else r.skip(t, n);
    }
    ended(r, entryEnd);
    into[key] = value;
  }
  ended(r, end);
  return into;
}

/**
 * google.protobuf.Value: null_value = 1, number_value = 2, string_value = 3,
 * bool_value = 4, struct_value = 5, list_value = 6 (values = 1); the last
 * one set wins, and none set is null, as protobuf-es reads it.
 */
function readValue(r: BinaryReader, end: number, depth: number): JsonValue {
  let value: JsonValue = null;
  while (r.pos < end) {
    const [no, type] = r.tag();
    switch (no) {
      case 1:
        expect(type, WireType.Varint, no);
        r.int32();
        value = null;
        break;
      case 2: {
        expect(type, WireType.Bit64, no);
        const n = r.double();
        if (!Number.isFinite(n))
          throw new WireError("a Struct number must be finite (JSON has no NaN or Infinity)");
        value = n;
        break;
      }
      case 3:
        value = text(r, type, no);
        break;
      case 4:
        expect(type, WireType.Varint, no);
        value = r.bool();
        break;
      case 5:
        value = readStruct(r, within(r, type, no), jsonObject(), depth);
        break;
      case 6:
        value = readList(r, within(r, type, no), depth);
        break;
      default:
        r.skip(type, no);
    }
  }
  ended(r, end);
  return value;
}

function readList(r: BinaryReader, end: number, depth: number): JsonValue[] {
  if (depth > maxDepth) throw new WireError(`a Struct nests deeper than ${maxDepth} levels`);
  const values: JsonValue[] = [];
  while (r.pos < end) {
    const [no, type] = r.tag();
    if (no === 1) values.push(readValue(r, within(r, type, no), depth + 1));
    else r.skip(type, no);
  }
  ended(r, end);
  return values;
}

function jsonObject(): JsonObject {
  return Object.create(null) as JsonObject;
}
