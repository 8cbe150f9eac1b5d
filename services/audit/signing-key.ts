import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { ConfigError } from "../kit/config.js";
import type { Pool } from "../kit/pg.js";
import { keyIdOf, type SigningKey } from "./checkpoint.js";

/**
 * The key that signs checkpoints. A configured file must hold an Ed25519
 * private key; without one, a key is generated on first start and kept
 * (mode 0600) under the data directory, so restarts sign with the same key.
 */
export async function loadSigningKey(
  configuredFile: string | undefined,
  defaultFile: string,
): Promise<SigningKey> {
  const file = configuredFile ?? defaultFile;
  let pem = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT" && !configuredFile) return undefined;
    throw new ConfigError(`AIRLOCK_AUDIT_SIGNING_KEY_FILE: cannot read ${file}: ${err.code}`);
  });
  if (pem === undefined) {
    const { privateKey } = generateKeyPairSync("ed25519");
    pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(file, pem, { mode: 0o600, flag: "wx" });
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw new ConfigError(`AIRLOCK_AUDIT_SIGNING_KEY_FILE: ${file} is not a PEM private key`);
  }
  if (privateKey.asymmetricKeyType !== "ed25519") {
    throw new ConfigError(
      `AIRLOCK_AUDIT_SIGNING_KEY_FILE: ${file} holds a ${privateKey.asymmetricKeyType} key; expected Ed25519 (openssl genpkey -algorithm ed25519)`,
    );
  }
  const publicKey = createPublicKey(privateKey);
  return {
    keyId: keyIdOf(publicKey),
    privateKey,
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** Publishes a key's public half, so every replica's checkpoints can be verified. */
export async function registerSigningKey(pool: Pool, key: SigningKey): Promise<void> {
  await pool.query(
    "INSERT INTO audit.signing_keys (key_id, public_key_pem) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    [key.keyId, key.publicKeyPem],
  );
}
