import test from "ava";
import { readIdentityConfig } from "./config.js";

test("single sign-on is off without an issuer, and needs its audience and org with one", (t) => {
  t.is(readIdentityConfig({}).oidc, undefined);
  t.throws(() => readIdentityConfig({ AIRLOCK_OIDC_ISSUER: "https://idp.example" }), {
    message: "AIRLOCK_OIDC_AUDIENCE is not set: it is required with AIRLOCK_OIDC_ISSUER",
  });
  const config = readIdentityConfig({
    AIRLOCK_OIDC_ISSUER: "https://idp.example",
    AIRLOCK_OIDC_AUDIENCE: "airlock",
    AIRLOCK_OIDC_ORG: "acme",
    AIRLOCK_OIDC_ADMIN_GROUPS: " admins, platform ,",
  });
  t.deepEqual(config.oidc?.adminGroups, ["admins", "platform"]);
  t.is(config.oidc?.groupsClaim, "groups");
});

test("a token lifetime beyond the maximum stops start-up", (t) => {
  t.throws(() => readIdentityConfig({ AIRLOCK_TOKEN_TTL: "500d" }), {
    message: /AIRLOCK_TOKEN_TTL="500d"/,
  });
});
