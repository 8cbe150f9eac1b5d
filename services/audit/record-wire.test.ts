import test from "ava";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  AppendRecordsSchema,
  AppendRequestSchema,
  RecordSchema,
  UsageSchema,
  type Record as AuditRecord,
} from "../../gen/airlock/audit/v1/audit_pb.js";
import { DomainError } from "../kit/errors.js";
import { llmResponse } from "../../test/support/audit-records.js";
import { incomingRecord } from "./convert.js";
import { decodeRecord } from "./record-wire.js";

/** What audit stores for these bytes, read both ways: the generic decoder and the wire reader. */
function bothWays(bytes: Uint8Array) {
  return {
    generic: incomingRecord(fromBinary(RecordSchema, bytes), 0),
    wire: incomingRecord(decodeRecord(bytes, 0), 0),
  };
}

function refusal(f: () => unknown): string {
  const err = (() => {
    try {
      f();
    } catch (e) {
      return e;
    }
  })();
  if (!(err instanceof DomainError) || err.kind !== "invalid_argument")
    throw new Error(`expected an invalid_argument refusal, got ${String(err)}`);
  return err.message;
}

const full = (): AuditRecord =>
  create(RecordSchema, {
    ...llmResponse("org_1", { tool: "shell", contentBytes: 2000 }),
    subject: "tok_1",
    repositories: ["github.com/acme/a", "github.com/acme/ü"],
    toolNames: ["shell", "read_file"],
    usage: create(UsageSchema, {
      inputTokens: 1200n,
      outputTokens: 300n,
      cacheReadTokens: 800n,
      cacheWriteTokens: 7n,
      reasoningTokens: 42n,
    }),
    latencyMs: 900n,
    attributes: {
      httpStatus: 200,
      ratio: -0.25,
      stream: true,
      none: null,
      nested: { list: [1, "two", false, null, { deep: ["x"] }], empty: {} },
      "": "empty key",
      ...(JSON.parse('{"__proto__": "just a key"}') as object),
    },
  });

test("a record read from its wire form is stored exactly as one decoded by protobuf-es", (t) => {
  const { generic, wire } = bothWays(toBinary(RecordSchema, full()));
  t.deepEqual(wire, generic);
  t.is(wire.meta.repositories[1], "github.com/acme/ü");
  t.is(JSON.parse(wire.meta.attributes).__proto__, "just a key");
});

test("the wire reader agrees on minimal, legacy-content, negative-time and odd-text records", (t) => {
  const cases: AuditRecord[] = [
    create(RecordSchema, { id: "r1", kind: "llm.request", time: timestampFromMs(0), orgId: "o" }),
    create(RecordSchema, {
      id: "r2",
      kind: "identity.token",
      time: timestampFromMs(-86_400_123),
      orgId: "o",
      content: { legacy: { struct: [1, 2] } },
    }),
    create(RecordSchema, {
      id: "r3",
      kind: "llm.response",
      time: { seconds: 1_700_000_000n, nanos: 999_999_999 },
      orgId: "o",
      actor: "nul\0inside",
      latencyMs: -5n,
      usage: create(UsageSchema, { inputTokens: 2n ** 53n - 1n }),
    }),
  ];
  for (const r of cases) {
    const { generic, wire } = bothWays(toBinary(RecordSchema, r));
    t.deepEqual(wire, generic, r.id);
  }
});

test("the wire reader follows proto3's rules: any order, last one wins, messages merge, unknown fields skipped", (t) => {
  const w = new BinaryWriter();
  w.tag(99, WireType.Varint).uint64(7); // a newer writer's field
  w.tag(4, WireType.LengthDelimited).string("org_1");
  w.tag(1, WireType.LengthDelimited).string("first-id");
  w.tag(2, WireType.LengthDelimited).string("llm.request");
  w.tag(1, WireType.LengthDelimited).string("second-id");
  w.tag(3, WireType.LengthDelimited).fork().tag(1, WireType.Varint).int64(1_700_000_000).join();
  w.tag(3, WireType.LengthDelimited).fork().tag(2, WireType.Varint).int32(5_000_000).join();
  w.tag(18, WireType.LengthDelimited).fork().tag(1, WireType.Varint).int64(3).join();
  w.tag(18, WireType.LengthDelimited).fork().tag(2, WireType.Varint).int64(4).join();
  w.tag(100, WireType.LengthDelimited).bytes(new Uint8Array([1, 2, 3]));
  w.tag(24, WireType.Varint).int64(77); // seq: the service's to set, ignored
  const bytes = w.finish();
  const { generic, wire } = bothWays(bytes);
  t.deepEqual(wire, generic);
  t.is(wire.meta.id, "second-id");
  t.is(wire.meta.timeMs, 1_700_000_000_005);
  t.like(wire.meta.usage, { inputTokens: 3, outputTokens: 4 });
});

test("invalid UTF-8 in a text field is refused, as protobuf-es refuses it", (t) => {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).string("r1");
  w.tag(5, WireType.LengthDelimited).bytes(new Uint8Array([0x61, 0xff, 0xc3, 0x62]));
  const bytes = w.finish();
  t.throws(() => fromBinary(RecordSchema, bytes));
  t.regex(
    refusal(() => decodeRecord(bytes, 4)),
    /^records\[4\]: .*utf-8/i,
  );
});

test("a malformed record is refused by position, with what is wrong with it", (t) => {
  const good = toBinary(RecordSchema, full());
  t.regex(
    refusal(() => decodeRecord(good.subarray(0, good.length - 10), 3)),
    /^records\[3\]: /,
  );

  const wrongType = new BinaryWriter().tag(1, WireType.Varint).uint32(5).finish();
  t.is(
    refusal(() => decodeRecord(wrongType, 0)),
    "records[0]: field 1 has wire type 0, expected 2",
  );

  const nan = create(RecordSchema, { id: "r", attributes: { x: 1 } });
  const nanBytes = toBinary(RecordSchema, nan);
  // The double 1 (3F F0 00 00 00 00 00 00, little-endian) becomes NaN (7F F8 …).
  const at = Buffer.from(nanBytes).indexOf(Buffer.from([0, 0, 0, 0, 0, 0, 0xf0, 0x3f]));
  nanBytes.set([0, 0, 0, 0, 0, 0, 0xf8, 0x7f], at);
  t.regex(
    refusal(() => decodeRecord(nanBytes, 1)),
    /^records\[1\]: .*finite/,
  );

  let deep: unknown = "bottom";
  for (let i = 0; i < 100; i++) deep = { d: deep };
  const deepBytes = toBinary(
    RecordSchema,
    create(RecordSchema, { id: "r", attributes: deep as never }),
  );
  t.regex(
    refusal(() => decodeRecord(deepBytes, 2)),
    /^records\[2\]: .*deeper than 64 levels/,
  );

  const overrun = new BinaryWriter()
    .tag(18, WireType.LengthDelimited)
    .bytes(new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(new Uint8Array(4)).finish())
    .finish();
  t.regex(
    refusal(() => decodeRecord(overrun, 0)),
    /^records\[0\]: /,
  );
});

test("AppendRecords reads an AppendRequest's bytes, one encoded record each", (t) => {
  const records = [full(), llmResponse("org_2")];
  const sent = toBinary(AppendRequestSchema, create(AppendRequestSchema, { records }));
  const served = fromBinary(AppendRecordsSchema, sent);
  t.is(served.encoded.length, 2);
  t.is(served.records.length, 0);
  served.encoded.forEach((bytes, i) =>
    t.deepEqual(bytes, toBinary(RecordSchema, records[i]!), `record ${i}`),
  );
});
