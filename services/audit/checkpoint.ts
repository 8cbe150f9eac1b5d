import { createHash, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { canonicalJson, sha256Hex } from "./canonical.js";

/** A signed statement that a chain's record at `seq` has hash `hash`. */
export interface CheckpointData {
  chainId: string;
  seq: number;
  hash: string;
  /** The previous checkpoint's `checkpointHash`, "" for a chain's first. */
  prevCheckpointHash: string;
  timeMs: number;
  keyId: string;
  /** SHA-256 of the statement. */
  checkpointHash: string;
  /** Base64 Ed25519 signature of the statement. */
  signature: string;
}

/** The exact bytes a checkpoint signs; offline verifiers rebuild them the same way. */
export function checkpointStatement(
  c: Omit<CheckpointData, "checkpointHash" | "signature">,
): string {
  return canonicalJson({
    type: "airlock.audit.checkpoint.v1",
    chainId: c.chainId,
    seq: c.seq,
    hash: c.hash,
    prevCheckpointHash: c.prevCheckpointHash,
    timeMs: c.timeMs,
    keyId: c.keyId,
  });
}

/** An Ed25519 key that signs checkpoints, with the id checkpoints name it by. */
export interface SigningKey {
  keyId: string;
  privateKey: KeyObject;
  publicKeyPem: string;
}

/** A key's id: the first 16 hex digits of the SHA-256 of its public key (SPKI DER). */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest("hex")
    .slice(0, 16);
}

/** Signs the checkpoint of a chain's head. */
export function signCheckpoint(
  key: SigningKey,
  c: Omit<CheckpointData, "checkpointHash" | "signature" | "keyId">,
): CheckpointData {
  const statement = checkpointStatement({ ...c, keyId: key.keyId });
  return {
    ...c,
    keyId: key.keyId,
    checkpointHash: sha256Hex(statement),
    signature: sign(null, Buffer.from(statement), key.privateKey).toString("base64"),
  };
}

/** Why a checkpoint does not check out, or undefined when it does. */
export function checkpointProblem(
  c: CheckpointData,
  publicKeys: ReadonlyMap<string, KeyObject>,
): "unknown_key" | "bad_signature" | undefined {
  const key = publicKeys.get(c.keyId);
  if (!key) return "unknown_key";
  const statement = checkpointStatement(c);
  if (sha256Hex(statement) !== c.checkpointHash) return "bad_signature";
  const signature = Buffer.from(c.signature, "base64");
  return verify(null, Buffer.from(statement), key, signature) ? undefined : "bad_signature";
}

/** Public keys by id, from PEM texts. */
export function publicKeysFromPem(pems: Iterable<string>): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  for (const pem of pems) {
    const key = createPublicKey(pem);
    keys.set(keyIdOf(key), key);
  }
  return keys;
}
