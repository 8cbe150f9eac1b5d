import type { KeyObject } from "node:crypto";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  CheckpointSchema,
  PurgedRangeSchema,
  RecordSchema,
} from "../../gen/airlock/audit/v1/audit_pb.js";
import type { CheckpointData } from "./checkpoint.js";
import { protoToChained, protoToPurgedRange } from "./convert.js";
import type { PurgedRange } from "./purged-ranges.js";
import { ChainVerifier, type Problem, type VerifyResult } from "./verify.js";

/** A line of an export that is not a record, a purged range, a checkpoint or a key as `airlock audit export` writes them. */
export class ExportFormatError extends Error {
  override name = "ExportFormatError";
}

/** What an offline check found, beyond the chain verifier's verdict. */
export interface OfflineVerdict extends Omit<VerifyResult, "problem"> {
  /** The chain verifier's problem, or "unsigned" when no trusted signature anchors the records. */
  problem?: Omit<Problem, "code"> & { code: Problem["code"] | "unsigned" };
  /** The first and last positions of the export (records or purged ranges). */
  firstSeq: number;
  lastSeq: number;
  /** The retention runs that purged ranges of the export name, whose receipts vouch for them. */
  purgedBy: string[];
  /** When ok: the last position a checkpoint signs; records after it are not signed yet. */
  signedThrough: number;
  /** The keys the checkpoints name. */
  keyIds: string[];
}

/**
 * Checks the JSON lines of an export against `trustedKeys` only: the
 * `{"key": …}` lines travel with the file, so whoever could edit the records
 * could also have replaced them. Without a previous record to link to, an
 * export that starts after position 1 trusts its first record's link; and a
 * chain no trusted checkpoint signs proves nothing, so that fails too.
 * Purged ranges are taken as retention recorded them: the runs they name
 * (`purgedBy`) account for them in their receipts.
 */
export async function verifyExport(
  lines: AsyncIterable<string> | Iterable<string>,
  trustedKeys: ReadonlyMap<string, KeyObject>,
): Promise<OfflineVerdict> {
  let verifier: ChainVerifier | undefined;
  let firstSeq = 0;
  let lastSeq = 0;
  let signedThrough = 0;
  const keyIds = new Set<string>();
  const purgedBy = new Set<string>();
  // Checkpoints may precede the first record; the verifier is only built once
  // that record (or a purged range) says where the export starts.
  const early: CheckpointData[] = [];
  const start = (seq: number) => {
    firstSeq = seq;
    const v = new ChainVerifier(trustedKeys, {
      fromSeq: seq,
      prevHash: seq === 1 ? "" : undefined,
      prevCheckpointHash: seq === 1 ? "" : undefined,
    });
    for (const c of early.splice(0)) v.checkpoint(c);
    return v;
  };
  let n = 0;
  for await (const text of lines) {
    n++;
    if (!text.trim()) continue;
    const line = parseLine(text, n);
    if ("record" in line) {
      const record = toChained(line.record, n);
      verifier ??= start(record.seq);
      verifier.record(record, undefined);
      lastSeq = record.seq;
    } else if ("purged" in line) {
      const range = toPurgedRange(line.purged, n);
      verifier ??= start(range.fromSeq);
      verifier.purged(range);
      purgedBy.add(range.runId);
      lastSeq = range.toSeq;
    } else if ("checkpoint" in line) {
      const c = toCheckpointData(line.checkpoint, n);
      signedThrough = Math.max(signedThrough, c.seq);
      keyIds.add(c.keyId);
      if (verifier) verifier.checkpoint(c);
      else early.push(c);
    }
  }
  if (!verifier) throw new ExportFormatError("the export holds no records");
  const result = verifier.finish(undefined);
  const verdict = {
    ...result,
    firstSeq,
    lastSeq,
    signedThrough,
    keyIds: [...keyIds],
    purgedBy: [...purgedBy],
  };
  if (result.ok && result.checkpointsChecked === 0) {
    return {
      ...verdict,
      ok: false,
      signedThrough: 0,
      problem: {
        code: "unsigned",
        seq: firstSeq,
        toSeq: lastSeq,
        recordId: "",
        message: `no checkpoint signs records ${firstSeq}..${lastSeq}: without a trusted signature they prove nothing`,
      },
    };
  }
  return verdict;
}

type Line =
  { record: JsonValue } | { purged: JsonValue } | { checkpoint: JsonValue } | { key: JsonValue };

function parseLine(text: string, n: number): Line {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ExportFormatError(`line ${n}: not JSON`);
  }
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && ["record", "purged", "checkpoint", "key"].includes(keys[0]!))
      return value as Line;
  }
  throw new ExportFormatError(
    `line ${n}: expected {"record": …}, {"purged": …}, {"checkpoint": …} or {"key": …}`,
  );
}

function toChained(json: JsonValue, n: number) {
  try {
    return protoToChained(fromJson(RecordSchema, json));
  } catch (err) {
    // Also a record the audit service would refuse (bad id, kind or time).
    throw new ExportFormatError(`line ${n}: not a record: ${messageOf(err)}`);
  }
}

function toPurgedRange(json: JsonValue, n: number): PurgedRange {
  let range;
  try {
    range = protoToPurgedRange(fromJson(PurgedRangeSchema, json));
  } catch (err) {
    throw new ExportFormatError(`line ${n}: not a purged range: ${messageOf(err)}`);
  }
  return range;
}

/** The inverse of the service's `checkpointToProto`. */
function toCheckpointData(json: JsonValue, n: number): CheckpointData {
  let c;
  try {
    c = fromJson(CheckpointSchema, json);
  } catch (err) {
    throw new ExportFormatError(`line ${n}: not a checkpoint: ${messageOf(err)}`);
  }
  if (!c.time) throw new ExportFormatError(`line ${n}: checkpoint without a time`);
  return {
    chainId: c.chainId,
    seq: Number(c.seq),
    hash: c.hash,
    prevCheckpointHash: c.prevCheckpointHash,
    timeMs: timestampDate(c.time).getTime(),
    keyId: c.keyId,
    checkpointHash: c.checkpointHash,
    signature: c.signature,
  };
}

function messageOf(err: unknown): string {
  return (err as { rawMessage?: string }).rawMessage ?? (err as Error).message;
}
