import test from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { IdentityService } from "../gen/airlock/identity/v1/identity_pb.js";
import { ServiceCredentials } from "../services/kit/service-credentials.js";
import { createTestDatabase, redisUrl, testServiceSecret } from "./support/env.js";
import { spawnAirlock, type AirlockProcess } from "./support/process.js";

test("after RevokeToken on one identity replica, a second replica refuses the token at once", async (t) => {
  const db = await createTestDatabase();
  const secret = testServiceSecret();
  const env = { DATABASE_URL: db.url, REDIS_URL: redisUrl, AIRLOCK_SERVICE_SECRET: secret };
  const replicas: AirlockProcess[] = [];
  t.teardown(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await db.drop();
  });
  replicas.push(
    await spawnAirlock(["serve", "identity"], env),
    await spawnAirlock(["serve", "identity"], env),
  );
  const [a, b] = replicas as [AirlockProcess, AirlockProcess];
  const client = (url: string, bearer: string) =>
    createClient(
      IdentityService,
      createConnectTransport({
        baseUrl: url,
        httpVersion: "2",
        interceptors: [
          (next) => (req) => (req.header.set("authorization", `Bearer ${bearer}`), next(req)),
        ],
      }),
    );
  const proxy = new ServiceCredentials(secret, "proxy");

  const admin = await createClient(
    IdentityService,
    createConnectTransport({ baseUrl: a.url, httpVersion: "2" }),
  ).bootstrap({
    orgName: "replicas",
    adminEmail: "admin@replicas.test",
  });
  const agentToken = await client(a.url, admin.token).createToken({ name: "to-revoke" });
  // B answers from the shared Redis cache after the first lookup.
  t.is(
    (await client(b.url, proxy.issue("identity")).authenticate({ token: agentToken.token }))
      .tokenId,
    agentToken.tokenInfo!.id,
  );
  t.is(
    (await client(b.url, proxy.issue("identity")).authenticate({ token: agentToken.token }))
      .tokenId,
    agentToken.tokenInfo!.id,
  );

  await client(a.url, admin.token).revokeToken({ tokenId: agentToken.tokenInfo!.id });
  const started = performance.now();
  const err = await t.throwsAsync(
    client(b.url, proxy.issue("identity")).authenticate({ token: agentToken.token }),
  );
  t.is(ConnectError.from(err).code, Code.Unauthenticated);
  t.log(
    `refused by the second replica ${(performance.now() - started).toFixed(1)} ms after RevokeToken returned`,
  );
  t.is(await b.stop(), 0, "SIGTERM ends the replica cleanly");
});
