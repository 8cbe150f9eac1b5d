import type { KeyObject } from "node:crypto";
import { createWriteStream } from "node:fs";
import { open, readFile, rename, rm } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { toJson } from "@bufbuild/protobuf";
import {
  AuditService,
  CheckpointSchema,
  PurgedRangeSchema,
  RecordSchema,
  SigningKeySchema,
  VerifyResponseSchema,
} from "../../gen/airlock/audit/v1/audit_pb.js";
import { publicKeysFromPem } from "../audit/checkpoint.js";
import { ExportFormatError, verifyExport } from "../audit/offline-verify.js";
import { inChainOrder } from "../audit/purged-ranges.js";
import { positiveInt } from "./audit-commands.js";
import { connect, type ClientOptions } from "./client.js";
import { UsageError, type Output } from "./output.js";

/** `airlock audit verify [--from SEQ] [--to SEQ]`: the server checks the chain; exit 1 when bad. */
export async function auditVerify(
  opts: ClientOptions,
  out: Output,
  flags: { from?: string; to?: string },
) {
  const res = await connect(AuditService, opts).verify(seqRange(flags));
  out.result(toJson(VerifyResponseSchema, res), () => {
    const p = res.problem;
    const purged =
      res.recordsPurged > 0n
        ? `, ${res.recordsPurged} positions passed as purged by retention`
        : "";
    if (res.ok || !p)
      return `ok: ${res.recordsChecked} records and ${res.checkpointsChecked} checkpoints checked${purged}; the chain's head is at ${res.headSeq}`;
    return `not ok: ${p.code} at ${p.seq}${p.recordId ? ` (record ${p.recordId})` : ""}: ${p.message}`;
  });
  if (!res.ok) process.exitCode = 1;
}

/**
 * `airlock audit export --out FILE`: the chain as JSON lines, the signing
 * keys first, then records, the ranges retention purged (each before the
 * record after it) and the checkpoints that sign them, in chain order. The
 * file appears only once complete, so a failed export never leaves a
 * shorter chain that would verify.
 */
export async function auditExport(
  opts: ClientOptions,
  out: Output,
  flags: { out?: string; from?: string; to?: string },
) {
  const file = flags.out;
  if (!file) throw new UsageError("usage: airlock audit export --out FILE [--from SEQ] [--to SEQ]");
  const client = connect(AuditService, opts);
  const { keys } = await client.listSigningKeys({});
  const counts = { records: 0, purged: 0, checkpoints: 0, firstSeq: 0, lastSeq: 0 };
  async function* lines() {
    for (const key of keys) yield line({ key: toJson(SigningKeySchema, key) });
    for await (const page of client.export(seqRange(flags))) {
      const items = inChainOrder(
        page.records,
        page.purged,
        (r) => Number(r.seq),
        (p) => Number(p.fromSeq),
      );
      for (const item of items) {
        if ("record" in item) {
          counts.records++;
          counts.firstSeq ||= Number(item.record.seq);
          counts.lastSeq = Number(item.record.seq);
          yield line({ record: toJson(RecordSchema, item.record) });
        } else {
          counts.purged += Number(item.purged.toSeq - item.purged.fromSeq) + 1;
          counts.firstSeq ||= Number(item.purged.fromSeq);
          counts.lastSeq = Number(item.purged.toSeq);
          yield line({ purged: toJson(PurgedRangeSchema, item.purged) });
        }
      }
      for (const c of page.checkpoints) {
        counts.checkpoints++;
        yield line({ checkpoint: toJson(CheckpointSchema, c) });
      }
    }
  }
  const partial = `${file}.partial`;
  try {
    await pipeline(Readable.from(lines()), createWriteStream(partial));
    await rename(partial, file);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
  out.result({ file, ...counts }, () =>
    counts.records + counts.purged === 0
      ? `no records to export; wrote the signing keys to ${file}`
      : `exported records ${counts.firstSeq}..${counts.lastSeq} (${counts.records}${counts.purged > 0 ? `; ${counts.purged} purged by retention` : ""}) and ${counts.checkpoints} checkpoints to ${file}`,
  );
}

/**
 * `airlock audit verify --file FILE --public-key KEY.pem…`: checks an export
 * with no server, trusting only the keys given; exit 1 when bad.
 */
export async function auditVerifyFile(
  out: Output,
  flags: { file?: string; "public-key"?: string[]; from?: string; to?: string },
) {
  const file = flags.file!;
  const keyFiles = flags["public-key"] ?? [];
  if (keyFiles.length === 0)
    throw new UsageError(
      "usage: airlock audit verify --file FILE --public-key KEY.pem: an export is checked against the keys you pin (airlock audit keys), never the keys inside it",
    );
  if (flags.from !== undefined || flags.to !== undefined)
    throw new UsageError("--from and --to select what to export; an export is verified whole");
  const trusted = await trustedKeys(keyFiles);
  const handle = await open(file).catch((err: Error) => {
    throw new UsageError(`cannot read ${file}: ${err.message}`);
  });
  let verdict;
  try {
    verdict = await verifyExport(handle.readLines(), trusted);
  } catch (err) {
    if (err instanceof ExportFormatError) throw new Error(`${file}: ${err.message}`);
    throw err;
  } finally {
    await handle.close();
  }
  out.result(verdict, () => {
    const p = verdict.problem;
    if (!verdict.ok && p)
      return `not ok: ${p.code} at ${p.seq}${p.recordId ? ` (record ${p.recordId})` : ""}: ${p.message}`;
    if (verdict.firstSeq > 1)
      out.note(
        `the export starts at ${verdict.firstSeq}: its link to the record before is taken on trust`,
      );
    if (verdict.recordsPurged > 0)
      out.note(
        `${verdict.recordsPurged} positions were purged by retention run(s) ${verdict.purgedBy.join(", ")}: their receipts account for them`,
      );
    if (verdict.signedThrough < verdict.lastSeq)
      out.note(
        `records ${verdict.signedThrough + 1}..${verdict.lastSeq} come after the last checkpoint: no signature covers them yet`,
      );
    return `ok: records ${verdict.firstSeq}..${verdict.lastSeq} (${verdict.recordsChecked}) and ${verdict.checkpointsChecked} checkpoints signed by ${verdict.keyIds.join(", ")} checked`;
  });
  if (!verdict.ok) process.exitCode = 1;
}

/** The public keys in PEM files; a file may hold several, as `airlock audit keys` prints them. */
async function trustedKeys(files: string[]) {
  const keys = new Map<string, KeyObject>();
  for (const file of files) {
    const text = await readFile(file, "utf8").catch((err: Error) => {
      throw new UsageError(`cannot read ${file}: ${err.message}`);
    });
    const pems = text.match(/-----BEGIN [A-Z ]+-----[^-]+-----END [A-Z ]+-----/g) ?? [];
    if (pems.length === 0) throw new UsageError(`${file}: no PEM key in it`);
    for (const pem of pems) {
      let parsed;
      try {
        parsed = publicKeysFromPem([pem]);
      } catch (err) {
        throw new UsageError(`${file}: not a public key: ${(err as Error).message}`);
      }
      for (const [id, key] of parsed) {
        if (key.asymmetricKeyType !== "ed25519")
          throw new UsageError(
            `${file}: holds a ${key.asymmetricKeyType} key; checkpoints are signed with Ed25519`,
          );
        keys.set(id, key);
      }
    }
  }
  return keys;
}

function seqRange(flags: { from?: string; to?: string }) {
  return {
    fromSeq: flags.from === undefined ? 0n : BigInt(positiveInt("--from", flags.from)),
    toSeq: flags.to === undefined ? 0n : BigInt(positiveInt("--to", flags.to)),
  };
}

function line(json: unknown): string {
  return JSON.stringify(json) + "\n";
}
