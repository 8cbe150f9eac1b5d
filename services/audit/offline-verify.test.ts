import test from "ava";
import { generateKeyPairSync } from "node:crypto";
import { create, fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  CheckpointSchema,
  PurgedRangeSchema,
  RecordSchema,
  UsageSchema,
} from "../../gen/airlock/audit/v1/audit_pb.js";
import { checkpointToProto } from "./audit-service.js";
import { extendChain, metaDigest, recordHash } from "./chain.js";
import { keyIdOf, publicKeysFromPem, signCheckpoint, type SigningKey } from "./checkpoint.js";
import { incomingRecord, protoToChained, recordToProto } from "./convert.js";
import { ExportFormatError, verifyExport } from "./offline-verify.js";

function newKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    keyId: keyIdOf(publicKey),
    privateKey,
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

const key = newKey();
const trusted = publicKeysFromPem([key.publicKeyPem]);

/** The lines `airlock audit export` writes for a chain of `count` records signed every `every`. */
function exportLines(count: number, every: number, signer = key): string[] {
  const incoming = Array.from({ length: count }, (_, i) =>
    incomingRecord(
      create(RecordSchema, {
        id: `rec_${i + 1}`,
        kind: "llm.response",
        time: timestampFromMs(1_767_225_600_000 + i),
        orgId: "org_1",
        actor: "agt_1",
        model: "gpt-4.1-mini",
        usage: create(UsageSchema, { inputTokens: 10n, outputTokens: 5n }),
        attributes: { httpStatus: 200 },
        contentJson: Buffer.from(JSON.stringify({ text: `answer ${i}` })),
      }),
      i,
    ),
  );
  const chain = extendChain({ chainId: "org_1", seq: 0, hash: "" }, incoming);
  const lines = [
    JSON.stringify({ key: { keyId: signer.keyId, publicKeyPem: signer.publicKeyPem } }),
  ];
  let prevCheckpointHash = "";
  for (const r of chain) {
    lines.push(JSON.stringify({ record: toJson(RecordSchema, recordToProto(r, undefined)) }));
    if (r.seq % every === 0) {
      const c = signCheckpoint(signer, {
        chainId: r.chainId,
        seq: r.seq,
        hash: r.hash,
        prevCheckpointHash,
        timeMs: 1_767_225_700_000 + r.seq,
      });
      prevCheckpointHash = c.checkpointHash;
      lines.push(JSON.stringify({ checkpoint: toJson(CheckpointSchema, checkpointToProto(c)) }));
    }
  }
  return lines;
}

const recordLine = (lines: string[], id: string) =>
  lines.findIndex((l) => l.includes(`"id":"${id}"`));

/** Replaces records from..to of an export with the purged range retention writes for them. */
function purge(lines: string[], from: number, to: number, runId = "run_1"): string[] {
  const last = JSON.parse(lines[recordLine(lines, `rec_${to}`)]!) as { record: { hash: string } };
  const range = create(PurgedRangeSchema, {
    chainId: "org_1",
    fromSeq: BigInt(from),
    toSeq: BigInt(to),
    lastHash: last.record.hash,
    runId,
  });
  const rangeLine = JSON.stringify({ purged: toJson(PurgedRangeSchema, range) });
  return lines.flatMap((line) => {
    const seq = Number(/"id":"rec_(\d+)"/.exec(line)?.[1] ?? 0);
    if (seq === from) return [rangeLine];
    return seq > from && seq <= to ? [] : [line];
  });
}

test("an untouched export checks out, with the signed range", async (t) => {
  const v = await verifyExport(exportLines(12, 5), trusted);
  t.true(v.ok, v.problem?.message);
  t.like(v, { recordsChecked: 12, checkpointsChecked: 2, firstSeq: 1, lastSeq: 12 });
  t.is(v.signedThrough, 10);
  t.deepEqual(v.keyIds, [key.keyId]);
});

test("an edited record is named", async (t) => {
  const lines = exportLines(12, 5);
  const i = recordLine(lines, "rec_7");
  lines[i] = lines[i]!.replace("gpt-4.1-mini", "gpt-evil");
  const v = await verifyExport(lines, trusted);
  t.false(v.ok);
  t.like(v.problem, { code: "hash_mismatch", seq: 7, recordId: "rec_7" });
});

test("a deleted record is a gap", async (t) => {
  const lines = exportLines(12, 5);
  lines.splice(recordLine(lines, "rec_4"), 1);
  const v = await verifyExport(lines, trusted);
  t.like(v.problem, { code: "missing_records", seq: 4, toSeq: 4 });
});

test("an edit with the chain rebuilt after it fails on the signed checkpoint", async (t) => {
  // Recomputing hashes needs no secret; only the checkpoint signature stops the rewrite.
  const lines = exportLines(12, 5);
  let prevHash = "";
  for (let i = 0; i < lines.length; i++) {
    const line = JSON.parse(lines[i]!) as { record?: JsonValue };
    if (!line.record) continue;
    const r = fromJson(RecordSchema, line.record);
    if (r.id === "rec_7") r.model = "gpt-evil";
    if (Number(r.seq) >= 7) {
      r.prevHash = prevHash;
      const chained = protoToChained(r);
      r.hash = recordHash(chained, metaDigest(chained));
      lines[i] = JSON.stringify({ record: toJson(RecordSchema, r) });
    }
    prevHash = r.hash;
  }
  const v = await verifyExport(lines, trusted);
  t.like(v.problem, { code: "checkpoint_mismatch", seq: 10 });
});

test("only the given keys are trusted, never the keys in the file", async (t) => {
  const v = await verifyExport(exportLines(12, 5, newKey()), trusted);
  t.false(v.ok);
  t.is(v.problem?.code, "unknown_key");
});

test("an export that starts past position 1 trusts its first link", async (t) => {
  const lines = exportLines(12, 5);
  const from6 = [lines[0]!, ...lines.slice(recordLine(lines, "rec_6"))];
  const v = await verifyExport(from6, trusted);
  t.true(v.ok, v.problem?.message);
  t.like(v, { firstSeq: 6, lastSeq: 12, recordsChecked: 7, checkpointsChecked: 1 });
});

test("an export with purged ranges checks out and names the runs that purged them", async (t) => {
  const lines = purge(purge(exportLines(12, 5), 1, 3, "run_a"), 6, 7, "run_b");
  const v = await verifyExport(lines, trusted);
  t.true(v.ok, v.problem?.message);
  t.like(v, { firstSeq: 1, lastSeq: 12, recordsChecked: 7, recordsPurged: 5 });
  t.deepEqual(v.purgedBy, ["run_a", "run_b"]);
  // Without its range, the same gap is records missing.
  const withoutRange = lines.filter((l) => !l.includes('"runId":"run_b"'));
  t.like((await verifyExport(withoutRange, trusted)).problem, {
    code: "missing_records",
    seq: 6,
    toSeq: 7,
  });
});

test("records no checkpoint signs prove nothing", async (t) => {
  const v = await verifyExport(exportLines(4, 5), trusted);
  t.false(v.ok);
  t.like(v.problem, { code: "unsigned", seq: 1, toSeq: 4 });
});

test("a line that is not part of an export names its number", async (t) => {
  const lines = exportLines(6, 5);
  lines.splice(2, 0, '{"note": "hi"}');
  await t.throwsAsync(verifyExport(lines, trusted), {
    instanceOf: ExportFormatError,
    message: /^line 3: expected/,
  });
  await t.throwsAsync(verifyExport(["{"], trusted), { message: "line 1: not JSON" });
  await t.throwsAsync(verifyExport([lines[0]!], trusted), {
    message: "the export holds no records",
  });
  const backwards = purge(exportLines(6, 5), 2, 3).map((l) =>
    l.replace('"toSeq":"3"', '"toSeq":"1"'),
  );
  await t.throwsAsync(verifyExport(backwards, trusted), {
    message: /^line 3: not a purged range: positions 2\.\.1/,
  });
  const badKind = exportLines(6, 5).map((l) => l.replace('"llm.response"', '"LLM"'));
  await t.throwsAsync(verifyExport(badKind, trusted), { message: /^line 2: not a record: / });
});
