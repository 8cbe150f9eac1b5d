import test from "ava";
import { generateKeyPairSync } from "node:crypto";
import { extendChain, metaDigest, type ChainedRecord } from "./chain.js";
import { keyIdOf, signCheckpoint, type CheckpointData } from "./checkpoint.js";
import type { PurgedRange } from "./purged-ranges.js";
import { ChainVerifier } from "./verify.js";
import { recordMeta } from "../../test/support/record-meta.js";

const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const signer = { keyId: keyIdOf(publicKey), privateKey, publicKeyPem: "" };
const keys = new Map([[signer.keyId, publicKey]]);

/** A chain of ten records, untouched. */
const chain = extendChain(
  { chainId: "org_1", seq: 0, hash: "" },
  Array.from({ length: 10 }, (_, i) => ({
    meta: recordMeta(i + 1),
    digest: metaDigest(recordMeta(i + 1)),
  })),
);
const at = (seq: number) => chain[seq - 1]!;

/** The range retention writes when it deletes positions from..to. */
function range(from: number, to: number, lastHash = at(to).hash): PurgedRange {
  return { chainId: "org_1", fromSeq: from, toSeq: to, lastHash, runId: "run_1" };
}

/** Checkpoints signed over the untouched chain at `seqs`, each linking to the one before. */
function checkpoints(...seqs: number[]): CheckpointData[] {
  let prev = "";
  return seqs.map((seq) => {
    const c = signCheckpoint(signer, {
      chainId: "org_1",
      seq,
      hash: at(seq).hash,
      prevCheckpointHash: prev,
      timeMs: 0,
    });
    prev = c.checkpointHash;
    return c;
  });
}

type Item = ChainedRecord | PurgedRange | CheckpointData;

/** Feeds items in the order given (as Verify and an export do) and returns the verdict. */
function verify(items: Item[], head = 10) {
  const v = new ChainVerifier(keys, { fromSeq: 1, prevHash: "", prevCheckpointHash: "" });
  for (const item of items) {
    if ("fromSeq" in item) v.purged(item);
    else if ("signature" in item) v.checkpoint(item);
    else v.record(item, undefined);
  }
  return v.finish(head);
}

const records = (...seqs: number[]) => seqs.map(at);

test("a gap covered exactly by adjacent purged ranges passes, counted as purged", (t) => {
  const result = verify([
    ...records(1, 2),
    range(3, 4),
    range(5, 6),
    ...records(7, 8, 9, 10),
    ...checkpoints(8),
  ]);
  t.like(result, { ok: true, recordsChecked: 6, recordsPurged: 4, checkpointsChecked: 1 });
});

test("a gap a range covers only in part is missing records", (t) => {
  const before = verify([...records(1, 2), range(3, 4), ...records(7, 8, 9, 10)]);
  t.like(before.problem, { code: "missing_records", seq: 5, toSeq: 6 });
  const after = verify([...records(1, 2), range(5, 6), ...records(7, 8, 9, 10)]);
  t.like(after.problem, { code: "missing_records", seq: 3, toSeq: 4 });
});

test("a deletion with no range is missing records, beside ranges elsewhere", (t) => {
  const result = verify([range(1, 2), ...records(3, 4, 6, 7, 8, 9, 10)]);
  t.like(result.problem, { code: "missing_records", seq: 5, toSeq: 5 });
});

test("the record after a range must name the range's last hash", (t) => {
  const result = verify([...records(1, 2), range(3, 4, at(3).hash), ...records(5, 6)], 6);
  t.like(result.problem, { code: "link_broken", seq: 5, recordId: "rec_5" });
  t.regex(result.problem!.message, /last hash of the purged range/);
});

test("a chain whose first records or whose head are purged verifies", (t) => {
  t.like(verify([range(1, 4), ...records(5, 6, 7, 8, 9, 10), ...checkpoints(10)]), {
    ok: true,
    recordsChecked: 6,
    recordsPurged: 4,
  });
  t.like(verify([...records(1, 2, 3, 4, 5, 6), range(7, 10), ...checkpoints(6)]), {
    ok: true,
    recordsChecked: 6,
    recordsPurged: 4,
  });
  t.like(verify([range(1, 10), ...checkpoints(10)]), { ok: true, recordsPurged: 10 });
});

test("a verified stretch may start inside a range or just after one", (t) => {
  const inside = new ChainVerifier(keys, { fromSeq: 4 });
  inside.purged(range(2, 5));
  for (const r of records(6, 7)) inside.record(r, undefined);
  t.like(inside.finish(7), { ok: true, recordsPurged: 2, recordsChecked: 2 });

  const after = new ChainVerifier(keys, { fromSeq: 6 });
  after.purged(range(2, 5, "f".repeat(64)));
  after.record(at(6), undefined);
  t.like(after.finish(6).problem, { code: "link_broken", seq: 6 });
});

test("a checkpoint inside a range stands on its signature; at its end, on the last hash", (t) => {
  const [c3, c6, c8] = checkpoints(3, 6, 8);
  // Position 3 is gone with no hash to compare; 6 is the range's last, whose hash is kept.
  t.like(verify([...records(1, 2), range(3, 6), c3!, c6!, ...records(7, 8, 9, 10), c8!]), {
    ok: true,
    checkpointsChecked: 3,
  });
  // Checkpoints before the range arrive first, as Verify feeds them.
  t.like(verify([...records(1, 2), c3!, c6!, range(3, 6), ...records(7, 8, 9, 10)]), {
    ok: true,
    checkpointsChecked: 2,
  });
  // A purged head: the checkpoint at its last position is compared with the range's hash.
  const head = checkpoints(3, 10);
  t.like(verify([...records(1, 2, 3, 4, 5), range(6, 10), ...head]), {
    ok: true,
    checkpointsChecked: 2,
  });
  const forged = verify([...records(1, 2, 3, 4, 5), range(6, 10, "e".repeat(64)), ...head]);
  t.like(forged.problem, { code: "checkpoint_mismatch", seq: 10 });
});

test("a range over positions already checked fails", (t) => {
  const result = verify([...records(1, 2, 3), range(3, 4), ...records(5)], 5);
  t.like(result.problem, { code: "link_broken", seq: 3 });
  t.regex(result.problem!.message, /overlaps positions already checked/);
});

test("tampering beside a purged range is still found", (t) => {
  const edited = { ...at(8), model: "gpt-evil" };
  const result = verify([...records(1, 2), range(3, 6), ...records(7), edited, ...records(9, 10)]);
  t.like(result.problem, { code: "hash_mismatch", seq: 8, recordId: "rec_8" });
});
