import test from "ava";
import {
  defaultScopes,
  digest,
  mintToken,
  parseToken,
  secretMatches,
  validateScopes,
} from "./tokens.js";

test("a minted token parses back to its id and a secret matching the stored digest", (t) => {
  const minted = mintToken();
  t.regex(minted.text, /^alk_[0-9A-Za-z]{54}$/);
  const parts = parseToken(minted.text);
  t.is(parts?.id, minted.id);
  t.true(secretMatches(parts!.secret, minted.secretSha256));
});

test("the stored digest is SHA-256 of the secret, never the secret itself", (t) => {
  const minted = mintToken();
  const { secret } = parseToken(minted.text)!;
  t.false(minted.secretSha256.toString("utf8").includes(secret));
  t.deepEqual(minted.secretSha256, digest(secret));
});

test("two tokens never share an id or a secret", (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const { id, secret } = parseToken(mintToken().text)!;
    t.false(seen.has(id) || seen.has(secret));
    seen.add(id).add(secret);
  }
});

test("malformed and mistyped tokens are refused without a lookup", (t) => {
  const good = mintToken().text;
  const flipped = good.slice(0, 20) + (good[20] === "a" ? "b" : "a") + good.slice(21);
  for (const bad of [
    "",
    "alk_",
    "Bearer " + good,
    good + "x",
    good.slice(1),
    good.toUpperCase(),
    flipped,
    "sk-" + good.slice(4),
  ]) {
    t.is(parseToken(bad), undefined, bad.slice(0, 12));
  }
});

test("a wrong secret does not match", (t) => {
  const a = mintToken();
  const b = parseToken(mintToken().text)!;
  t.false(secretMatches(b.secret, a.secretSha256));
});

test("scopes are validated, deduplicated and sorted", (t) => {
  t.deepEqual(validateScopes(["llm", "repo:github.com/acme/*", "llm", "admin"]), [
    "admin",
    "llm",
    "repo:github.com/acme/*",
  ]);
  for (const bad of ["root", "repo:", "workspace:has space", "LLM"]) {
    t.throws(() => validateScopes([bad]), { message: /invalid scope/ });
  }
});

test("agents get only llm by default; users also admin and audit", (t) => {
  t.deepEqual(defaultScopes("agent"), ["llm"]);
  t.deepEqual(defaultScopes("service_account"), ["llm"]);
  t.deepEqual(defaultScopes("user"), ["admin", "audit", "llm"]);
});
