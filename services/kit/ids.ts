import { randomBytes, randomUUID } from "node:crypto";

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** `length` characters of base62 from a CSPRNG, without modulo bias. */
export function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 × 62: bytes at or above it would favour the first characters.
      if (byte < 248) out += alphabet[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** Encodes a non-negative integer in base62, left-padded to `width`. */
export function toBase62(value: number, width: number): string {
  let out = "";
  let n = value;
  do {
    out = alphabet[n % 62] + out;
    n = Math.floor(n / 62);
  } while (n > 0);
  return out.padStart(width, "0");
}

/** A new identifier like `usr_3kTMd9…`: a type prefix and 20 random base62 characters. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBase62(20)}`;
}

/** Whether `value` has the shape newId gives (with a three-letter prefix, as every Airlock id has). */
export function isId(value: string): boolean {
  return /^[a-z]{3}_[0-9A-Za-z]{20}$/.test(value);
}

/**
 * A UUID version 7 (RFC 9562): the time in milliseconds, then 74 random
 * bits. Ids made later sort after those made earlier, so the audit log's
 * key indexes take new records at their right edge, in pages already in
 * memory, rather than at a random page each (a random UUID costs Postgres
 * about a fifth more CPU per stored record once the day's indexes outgrow
 * its buffers). The random bits come from a version 4 UUID, whose variant
 * bits are where version 7 has them.
 */
export function uuidv7(ms = Date.now()): string {
  const time = ms.toString(16).padStart(12, "0");
  return `${time.slice(0, 8)}-${time.slice(8)}-7${randomUUID().slice(15)}`;
}
