import test from "ava";
import { ConnectError } from "@connectrpc/connect";
import { ServiceCredentials } from "../services/kit/service-credentials.js";
import { parseToken } from "../services/identity/tokens.js";
import { testServiceSecret } from "./support/env.js";
import { startIdentity } from "./support/runtime.js";
import { TestIdp } from "./support/idp.js";

test("no token, secret or ID token appears in any log line, whatever the calls and their failures", async (t) => {
  const idp = await TestIdp.start();
  const secret = testServiceSecret();
  const h = await startIdentity({
    AIRLOCK_SERVICE_SECRET: secret,
    AIRLOCK_OIDC_ISSUER: idp.issuer,
    AIRLOCK_OIDC_AUDIENCE: "airlock",
    AIRLOCK_OIDC_ORG: "loggers",
  });
  t.teardown(async () => {
    await h.close();
    await idp.close();
  });
  const sensitive: string[] = [secret];
  const attempt = async (call: Promise<unknown>) =>
    call.catch((err: unknown) => ConnectError.from(err));

  const boot = await h.client().bootstrap({ orgName: "loggers", adminEmail: "admin@loggers.test" });
  sensitive.push(boot.token);
  const created = await h.client(boot.token).createToken({ name: "x" });
  sensitive.push(created.token);
  await h.client(created.token).authenticate({ token: created.token });
  const service = new ServiceCredentials(secret, "proxy").issue("identity");
  sensitive.push(service);
  await h.client(service).authenticate({ token: created.token });
  const idToken = await idp.sign({ sub: "u-1", email: "dev@loggers.test", email_verified: true });
  sensitive.push(idToken);
  const session = await h.client().exchangeOidcToken({ idToken });
  sensitive.push(session.token);
  const tampered = idToken.slice(0, -4) + "AAAA";
  sensitive.push(tampered);
  await attempt(h.client().exchangeOidcToken({ idToken: tampered }));
  await h.client(boot.token).revokeToken({ tokenId: created.tokenInfo!.id });
  await attempt(h.client(created.token).authenticate({ token: created.token }));
  await attempt(h.client(service).authenticate({ token: "alk_garbage-that-looks-secret" }));
  sensitive.push("alk_garbage-that-looks-secret");
  await attempt(h.client("Bearer-less nonsense-credential-123").getPrincipal({}));
  await new Promise((resolve) => setTimeout(resolve, 50));

  t.true(h.logs.lines.length > 10, "the calls were logged");
  const logged = h.logs.text;
  for (const value of sensitive) {
    t.false(logged.includes(value), `${value.slice(0, 8)}… leaked`);
    const s = parseToken(value)?.secret;
    if (s) t.false(logged.includes(s), "a token's secret part leaked");
  }
});
