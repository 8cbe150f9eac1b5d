import test from "ava";
import { generateKeyPairSync } from "node:crypto";
import { canonicalJson, sha256Hex } from "./canonical.js";
import { extendChain, metaDigest, recordHash, type RecordMeta } from "./chain.js";
import { keyIdOf, signCheckpoint } from "./checkpoint.js";
import { ChainVerifier } from "./verify.js";
import { recordMeta } from "../../test/support/record-meta.js";

test("the fast digests write exactly the canonical form", (t) => {
  const m = recordMeta(1);
  t.is(metaDigest(m), sha256Hex(canonicalJson(m)));
  // Extra fields of a stored record (its chain link) do not change the digest.
  t.is(metaDigest({ ...m, hash: "x", seq: 9 } as RecordMeta), metaDigest(m));
  const link = { chainId: "org_1", seq: 3, prevHash: "ab" };
  t.is(
    recordHash(link, "cd"),
    sha256Hex(canonicalJson({ seq: 3, prevHash: "ab", chainId: "org_1", metaSha256: "cd" })),
  );
});

const key = (() => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    signer: {
      keyId: keyIdOf(publicKey),
      privateKey,
      publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    },
    keys: new Map([[keyIdOf(publicKey), publicKey]]),
  };
})();

function chainOf(n: number) {
  return extendChain(
    { chainId: "org_1", seq: 0, hash: "" },
    Array.from({ length: n }, (_, i) => ({
      meta: recordMeta(i + 1),
      digest: metaDigest(recordMeta(i + 1)),
    })),
  );
}

/** Verifies `records` against a checkpoint signed over the untouched chain's position 4. */
function verify(records: ReturnType<typeof chainOf>, head = records.length) {
  const v = new ChainVerifier(key.keys, { fromSeq: 1, prevHash: "", prevCheckpointHash: "" });
  const last = chainOf(6)[3]!;
  v.checkpoint(
    signCheckpoint(key.signer, {
      chainId: "org_1",
      seq: 4,
      hash: last.hash,
      prevCheckpointHash: "",
      timeMs: 0,
    }),
  );
  for (const r of records) v.record(r, undefined);
  return v.finish(head);
}

test("a verifier passes an untouched chain and names the first edit, gap, swap or lost tail", (t) => {
  const chain = chainOf(6);
  t.like(verify(chain), { ok: true, recordsChecked: 6, checkpointsChecked: 1 });

  const edited = chainOf(6);
  edited[2] = { ...edited[2]!, model: "gpt-evil" };
  t.like(verify(edited).problem, { code: "hash_mismatch", seq: 3, recordId: "rec_3" });

  const gap = chainOf(6).filter((r) => r.seq !== 5);
  t.like(verify(gap).problem, { code: "missing_records", seq: 5, toSeq: 5 });

  const swapped = chainOf(6);
  [swapped[1], swapped[2]] = [
    { ...swapped[2]!, seq: 2 },
    { ...swapped[1]!, seq: 3 },
  ];
  t.is(verify(swapped).problem?.seq, 2);

  t.like(verify(chainOf(6).slice(0, 5), 6).problem, { code: "head_missing", seq: 6 });
});

test("a chain rewritten from an edit on, hashes recomputed, fails on its signed checkpoint", (t) => {
  const chain = chainOf(6);
  const forged = extendChain(
    { chainId: "org_1", seq: 1, hash: chain[0]!.hash },
    chain.slice(1).map((r, i) => {
      const m = i === 0 ? { ...r, model: "gpt-evil" } : r;
      return { meta: m, digest: metaDigest(m) };
    }),
  );
  t.like(verify([chain[0]!, ...forged]).problem, { code: "checkpoint_mismatch", seq: 4 });
});

test("content may be missing only where retention's content mark explains it", (t) => {
  const chain = chainOf(4);
  const check = (contentPurgedBeforeMs: number | null | undefined, content: string | undefined) => {
    const v = new ChainVerifier(key.keys, { fromSeq: 1, prevHash: "", contentPurgedBeforeMs });
    for (const r of chain) v.record(r, r.seq === 3 ? undefined : content);
    return v.finish(4);
  };
  // Record 3 (time base + 3) has lost its content; the others have theirs ("{}").
  t.like(check(null, "{}").problem, { code: "content_missing", seq: 3, recordId: "rec_3" });
  t.like(check(1_767_225_600_000 + 3, "{}").problem, { code: "content_missing", seq: 3 });
  t.true(check(1_767_225_600_000 + 4, "{}").ok, "older than the mark: purged by retention");
  t.true(check(undefined, undefined).ok, "an export carries no content: not checked");
  t.like(check(1_767_225_600_000 + 4, '{"x":1}').problem, { code: "content_mismatch", seq: 1 });
});
