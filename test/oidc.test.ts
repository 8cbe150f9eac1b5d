import test from "ava";
import { Code } from "@connectrpc/connect";
import { generateKeyPair } from "jose";
import { code } from "./support/codes.js";
import { startIdentity, type Harness } from "./support/runtime.js";
import { TestIdp } from "./support/idp.js";

let idp: TestIdp;
let h: Harness;
let bootstrapAdminId: string;

test.before(async () => {
  idp = await TestIdp.start();
  h = await startIdentity({
    AIRLOCK_OIDC_ISSUER: idp.issuer,
    AIRLOCK_OIDC_AUDIENCE: "airlock",
    AIRLOCK_OIDC_ORG: "initech",
    AIRLOCK_OIDC_ADMIN_GROUPS: "platform-admins",
  });
  bootstrapAdminId = (
    await h.client().bootstrap({ orgName: "initech", adminEmail: "boss@initech.test" })
  ).admin!.id;
});
test.after.always(async () => {
  await h?.close();
  await idp?.close();
});

test("first sign-in creates the user from the claims; the session token works; the next sign-in finds them", async (t) => {
  const idToken = await idp.sign({
    sub: "u-100",
    email: "Peter@Initech.test",
    email_verified: true,
    name: "Peter",
    groups: ["eng"],
  });
  const first = await h.client().exchangeOidcToken({ idToken });
  t.true(first.created);
  t.regex(first.principal!.id, /^usr_/);
  t.is(first.principal?.email, "peter@initech.test");
  t.is(first.principal?.displayName, "Peter");
  t.deepEqual(first.principal?.groups, ["eng"]);
  t.deepEqual(first.principal?.roles, ["developer"]);
  t.is(first.principal?.org?.name, "initech");
  const who = await h.client(first.token).authenticate({ token: first.token });
  t.is(who.principal?.id, first.principal?.id);
  const expiresInMs = Number(who.expireTime!.seconds) * 1000 - Date.now();
  t.true(
    expiresInMs > 11 * 3_600_000 && expiresInMs <= 12 * 3_600_000,
    "a session lasts AIRLOCK_SESSION_TTL (12h)",
  );

  const again = await h
    .client()
    .exchangeOidcToken({ idToken: await idp.sign({ sub: "u-100", groups: ["eng", "oncall"] }) });
  t.false(again.created);
  t.is(again.principal?.id, first.principal?.id);
  t.deepEqual(again.principal?.groups, ["eng", "oncall"]);
});

test("members of an admin group become org-admins", async (t) => {
  const res = await h
    .client()
    .exchangeOidcToken({ idToken: await idp.sign({ sub: "u-200", groups: ["platform-admins"] }) });
  t.deepEqual(res.principal?.roles, ["org-admin"]);
});

test("the bootstrap admin's first sign-in links to the bootstrap user by verified email", async (t) => {
  const res = await h.client().exchangeOidcToken({
    idToken: await idp.sign({ sub: "u-boss", email: "boss@initech.test", email_verified: true }),
  });
  t.false(res.created);
  t.is(res.principal?.id, bootstrapAdminId);
  t.deepEqual(res.principal?.roles, ["org-admin"]);
});

test("an unverified email never links to an existing user", async (t) => {
  const res = await h.client().exchangeOidcToken({
    idToken: await idp.sign({
      sub: "u-imposter",
      email: "boss@initech.test",
      email_verified: false,
    }),
  });
  t.true(res.created);
  t.not(res.principal?.id, bootstrapAdminId);
  t.deepEqual(res.principal?.roles, ["developer"]);
});

test("tampered, wrong-issuer, wrong-audience, expired and foreign-key ID tokens are unauthenticated", async (t) => {
  const good = await idp.sign({ sub: "u-300" });
  const [header, payload, signature] = good.split(".");
  const claims = JSON.parse(Buffer.from(payload!, "base64url").toString());
  const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: "u-boss" })).toString("base64url")}.${signature}`;
  const { privateKey: otherKey } = await generateKeyPair("RS256");
  const bad = {
    tampered,
    wrongIssuer: await idp.sign({ sub: "u-300" }, { issuer: "https://evil.test" }),
    wrongAudience: await idp.sign({ sub: "u-300" }, { audience: "someone-else" }),
    expired: await idp.sign({ sub: "u-300" }, { expiresIn: Math.floor(Date.now() / 1000) - 600 }),
    foreignKey: await idp.sign({ sub: "u-300" }, { key: otherKey }),
    notAJwt: "hello",
    empty: "",
  };
  for (const [name, idToken] of Object.entries(bad)) {
    t.is(await code(h.client().exchangeOidcToken({ idToken })), Code.Unauthenticated, name);
  }
  t.is(
    await code(h.client().exchangeOidcToken({ idToken: good })),
    "ok",
    "the untampered token is fine",
  );
});

test("an IdP email that is not an address does not stop the sign-in; it is just not kept", async (t) => {
  const res = await h.client().exchangeOidcToken({
    idToken: await idp.sign({
      sub: "u-odd",
      email: "not an address",
      email_verified: true,
      name: "Odd",
    }),
  });
  t.true(res.created);
  t.is(res.principal?.email, "");
  t.is(res.principal?.displayName, "Odd");
});
