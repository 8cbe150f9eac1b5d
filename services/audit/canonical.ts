import { hash } from "node:crypto";

/** A JSON value as records carry it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * JSON with object keys sorted at every level and no whitespace: the one
 * text a value hashes as, whoever wrote it and however a database stored it.
 * Numbers must be finite; `undefined` members are left out, as JSON does.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value))
      throw new TypeError("canonical JSON has no place for NaN or Infinity");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    // Every record's attributes pass here: keys sorted in place and one
    // string built, rather than entry pairs filtered, sorted and mapped.
    // The default sort compares UTF-16 code units, as `<` on strings does.
    const object = value as Record<string, unknown>;
    let text = "";
    for (const key of Object.keys(object).sort()) {
      const v = object[key];
      if (v === undefined) continue;
      text += `${text ? "," : ""}${JSON.stringify(key)}:${canonicalJson(v)}`;
    }
    return `{${text}}`;
  }
  throw new TypeError(`canonical JSON has no place for a ${typeof value}`);
}

/** Lowercase hex SHA-256 of a text's UTF-8 bytes (or of the bytes themselves). */
export function sha256Hex(text: string | Uint8Array): string {
  // One-shot: cheaper than createHash for the small inputs hashed per record.
  return hash("sha256", text, "hex");
}
