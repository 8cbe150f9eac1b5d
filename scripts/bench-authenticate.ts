/**
 * Authenticate latency and throughput, over the network on loopback, the way
 * the proxy will call it: identity runs as its own process (`airlock serve
 * identity`) on the real Postgres and Redis; this process calls it over
 * HTTP/2 with a service credential.
 *
 *   npm run bench            (DATABASE_URL / REDIS_URL as for the tests)
 *   BENCH_SECONDS=10 BENCH_CONCURRENCY=128 npm run bench
 */
import { cpus } from "node:os";
import { Redis } from "ioredis";
import { IdentityService } from "../gen/airlock/identity/v1/identity_pb.js";
import { ServiceCredentials } from "../services/kit/service-credentials.js";
import { connectTo } from "../test/support/clients.js";
import { createTestDatabase, redisUrl, testServiceSecret } from "../test/support/env.js";
import { cpuMs, latencyRow, runFor, spawnAsDeployed, timeEach } from "./bench-support.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
const samples = Number(process.env.BENCH_SAMPLES ?? 2000);

const db = await createTestDatabase();
const secret = testServiceSecret();
const server = await spawnAsDeployed(["serve", "identity"], {
  DATABASE_URL: db.url,
  REDIS_URL: redisUrl,
  AIRLOCK_SERVICE_SECRET: secret,
});
// The server logs every RPC at info, as in production; drain those lines without parsing them.
server.child.stdout?.removeAllListeners("data").resume();
const redis = new Redis(redisUrl);
try {
  const admin = await connectTo(IdentityService, server.url).bootstrap({
    orgName: "bench",
    adminEmail: "bench@bench.test",
  });
  const asAdmin = connectTo(IdentityService, server.url, admin.token);
  const missTokens: { text: string; id: string }[] = [];
  for (let i = 0; i < Math.min(samples, 1000); i++) {
    const created = await asAdmin.createToken({ name: `bench-${i}` });
    missTokens.push({ text: created.token, id: created.tokenInfo!.id });
  }
  const proxy = new ServiceCredentials(secret, "proxy");
  // One client (one HTTP/2 connection) for every call, as a service keeps it.
  const identity = connectTo(IdentityService, server.url, proxy.issue("identity"));

  const hitToken = admin.token;
  for (let i = 0; i < 200; i++) await identity.authenticate({ token: hitToken }); // warm-up: JIT, connection, cache
  const hit = await timeEach(samples, () => identity.authenticate({ token: hitToken }));

  const miss: number[] = [];
  for (const token of missTokens) {
    await redis.del(`airlock:identity:session:${token.id}`);
    const started = performance.now();
    await identity.authenticate({ token: token.text });
    miss.push(performance.now() - started);
  }

  const cpuBefore = await cpuMs(server.child.pid!);
  const throughput = await runFor(seconds * 1000, concurrency, () =>
    identity.authenticate({ token: hitToken }),
  );
  const cpuPerCall = ((await cpuMs(server.child.pid!)) - cpuBefore) / throughput.calls;

  console.log(
    `Authenticate over HTTP/2 on loopback; identity in its own process; ${cpus().length} CPUs (${cpus()[0]?.model.trim()})`,
  );
  console.log("");
  console.log("| case | calls | p50 ms | p99 ms | mean ms |");
  console.log("|---|---|---|---|---|");
  console.log(latencyRow("cache hit (Redis), sequential", hit));
  console.log(
    latencyRow(
      "cache miss (Postgres, then fill), sequential",
      miss.sort((a, b) => a - b),
    ),
  );
  console.log("");
  console.log(
    `throughput, cache hits, ${concurrency} concurrent callers for ${seconds}s: ${throughput.rps} calls/s (${throughput.errors} errors)`,
  );
  console.log(
    `identity's CPU per call under that load: ${(cpuPerCall * 1000).toFixed(0)} µs (the caller shares the machine, so calls/s is a floor)`,
  );
} finally {
  redis.disconnect();
  await server.stop();
  await db.drop();
}
