import test from "ava";
import { ServiceCredentials } from "./service-credentials.js";

const secret = "s".repeat(32);

test("a credential verifies for its audience and names the caller", (t) => {
  const proxy = new ServiceCredentials(secret, "proxy");
  const identity = new ServiceCredentials(secret, "identity");
  t.is(identity.verify(proxy.issue("identity"), ["identity"]), "proxy");
});

test("a credential for another audience is refused", (t) => {
  const proxy = new ServiceCredentials(secret, "proxy");
  t.is(
    new ServiceCredentials(secret, "audit").verify(proxy.issue("identity"), ["audit"]),
    undefined,
  );
});

test("a credential signed with another secret is refused", (t) => {
  const forged = new ServiceCredentials("f".repeat(32), "proxy").issue("identity");
  t.is(new ServiceCredentials(secret, "identity").verify(forged, ["identity"]), undefined);
});

test("a tampered payload is refused", (t) => {
  const credential = new ServiceCredentials(secret, "proxy").issue("identity");
  const [prefix, payload, mac] = credential.split(".");
  const claims = JSON.parse(Buffer.from(payload!, "base64url").toString());
  claims.svc = "retention";
  const tampered = `${prefix}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${mac}`;
  t.is(new ServiceCredentials(secret, "identity").verify(tampered, ["identity"]), undefined);
});

test("an expired credential is refused; a fresh one is issued in its place", (t) => {
  let now = 1_000_000;
  const proxy = new ServiceCredentials(secret, "proxy", () => now);
  const identity = new ServiceCredentials(secret, "identity", () => now);
  const first = proxy.issue("identity");
  t.is(proxy.issue("identity"), first, "reused while fresh");
  now += 10 * 60_000;
  t.is(identity.verify(first, ["identity"]), undefined);
  t.not(proxy.issue("identity"), first);
  t.is(identity.verify(proxy.issue("identity"), ["identity"]), "proxy");
});

test("garbage is refused", (t) => {
  const identity = new ServiceCredentials(secret, "identity");
  for (const bad of ["", "alks.", "alks.x.y", "alks.x.y.z", "alk_abc"])
    t.is(identity.verify(bad, ["identity"]), undefined);
});
