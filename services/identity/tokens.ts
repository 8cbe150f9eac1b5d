import { createHash, timingSafeEqual } from "node:crypto";
import { crc32 } from "node:zlib";
import { invalid } from "../kit/errors.js";
import { randomBase62, toBase62 } from "../kit/ids.js";
import type { PrincipalKind } from "./store.js";

/**
 * Token text: `alk_` + id (16) + secret (32) + checksum (6), all base62.
 * The id is public (it is what ListTokens shows and what logs may name); the
 * secret has ~190 bits of entropy and only its SHA-256 is stored. The CRC32
 * checksum lets a malformed or mistyped token be refused without a lookup,
 * and lets secret scanners recognise real tokens.
 */
const tokenPrefix = "alk_";
const idLength = 16;
const secretLength = 32;
const checksumLength = 6;
const tokenPattern = new RegExp(
  `^${tokenPrefix}[0-9A-Za-z]{${idLength + secretLength + checksumLength}}$`,
);

export interface MintedToken {
  text: string;
  id: string;
  secretSha256: Buffer;
}

export function mintToken(): MintedToken {
  const id = randomBase62(idLength);
  const secret = randomBase62(secretLength);
  return { text: formatToken(id, secret), id, secretSha256: digest(secret) };
}

/** The token text for an id and a secret, with its checksum. */
export function formatToken(id: string, secret: string): string {
  return tokenPrefix + id + secret + checksum(id + secret);
}

/** Splits a token into id and secret; undefined when it is not a well-formed Airlock token. */
export function parseToken(text: string): { id: string; secret: string } | undefined {
  if (!tokenPattern.test(text)) return undefined;
  const body = text.slice(tokenPrefix.length, tokenPrefix.length + idLength + secretLength);
  if (text.slice(-checksumLength) !== checksum(body)) return undefined;
  return { id: body.slice(0, idLength), secret: body.slice(idLength) };
}

/** The part of a token that may be shown: `alk_<id>`. */
export function displayPrefix(id: string): string {
  return tokenPrefix + id;
}

export function digest(secret: string): Buffer {
  return createHash("sha256").update(secret).digest();
}

/** Constant-time comparison of a presented secret with a stored digest. */
export function secretMatches(secret: string, stored: Buffer): boolean {
  const given = digest(secret);
  return given.length === stored.length && timingSafeEqual(given, stored);
}

function checksum(body: string): string {
  return toBase62(crc32(body), checksumLength);
}

/**
 * Scopes narrow what a token may be used for; policy still decides within
 * them. `llm`: call models through the proxy; `admin`: manage principals,
 * tokens and policy; `audit`: read the audit log; `workspace:<name>` and
 * `repo:<pattern>` bind the token to a workspace or repositories.
 */
const scopePattern = /^(llm|admin|audit)$|^(workspace|repo):[A-Za-z0-9._\-/*]{1,200}$/;

export function validateScopes(scopes: readonly string[]): string[] {
  if (scopes.length > 50) throw invalid("at most 50 scopes per token");
  for (const scope of scopes) {
    if (!scopePattern.test(scope)) {
      throw invalid(
        `invalid scope ${JSON.stringify(scope.slice(0, 80))}: expected llm, admin, audit, workspace:<name> or repo:<pattern>`,
      );
    }
  }
  return [...new Set(scopes)].sort();
}

/** Scopes a token gets when none are asked for: agents call models; people also administer and read. */
export function defaultScopes(kind: PrincipalKind): string[] {
  return kind === "user" ? ["admin", "audit", "llm"] : ["llm"];
}
