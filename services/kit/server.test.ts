import test from "ava";
import http2 from "node:http2";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  Health,
  HealthCheckResponse_ServingStatus as Status,
} from "../../gen/grpc/health/v1/health_pb.js";
import { LogCapture } from "../../test/support/log-capture.js";
import { HealthStatus } from "./health.js";
import { createLogger } from "./log.js";
import { createRegistry } from "./metrics.js";
import { startServer, type ReadinessCheck } from "./server.js";

async function slowServer(readiness: ReadinessCheck[] = []) {
  const health = new HealthStatus([]);
  health.set(true);
  let started!: () => void;
  const inFlight = new Promise<void>((resolve) => (started = resolve));
  const server = await startServer({
    addr: { host: "127.0.0.1", port: 0 },
    routes: (router) =>
      router.service(Health, {
        async check() {
          started();
          await new Promise((resolve) => setTimeout(resolve, 300));
          return { status: Status.SERVING };
        },
      }),
    interceptors: [],
    readiness,
    health,
    registry: createRegistry(),
    log: createLogger({ service: "t", destination: new LogCapture() }),
  });
  return { server, health, inFlight };
}

test("shutdown lets an in-flight call finish, then refuses new connections", async (t) => {
  const { server, health, inFlight } = await slowServer();
  const client = createClient(
    Health,
    createConnectTransport({ baseUrl: server.url, httpVersion: "2" }),
  );
  const call = client.check({});
  await inFlight;
  const closing = server.close(5000);
  t.is(health.get(""), Status.NOT_SERVING, "marked not serving first");
  t.is((await call).status, Status.SERVING, "the in-flight call completed");
  await closing;
  await t.throwsAsync(fetch(`${server.url}/healthz`));
});

test("/readyz reports each dependency and answers 503 while one fails; /healthz does not depend on them", async (t) => {
  const { server } = await slowServer([
    { name: "postgres", check: async () => undefined },
    { name: "redis", check: () => Promise.reject(new Error("connection refused")) },
  ]);
  t.teardown(() => server.close(0));
  const ready = await fetch(`${server.url}/readyz`);
  t.is(ready.status, 503);
  t.deepEqual(await ready.json(), {
    ready: false,
    checks: { postgres: "ok", redis: "failing: connection refused" },
  });
  t.is((await fetch(`${server.url}/healthz`)).status, 200);
});

test("an HTTP/2 client may send a whole largest message at once, and four on a connection, without waiting for window grants", async (t) => {
  const { server } = await slowServer();
  t.teardown(() => server.close(0));
  const session = http2.connect(server.url);
  t.teardown(() => session.close());
  const settings = await new Promise<http2.Settings>((resolve) =>
    session.once("remoteSettings", resolve),
  );
  t.is(settings.initialWindowSize, 4 * 1024 * 1024 + 5);
  // The connection's window grows by the server's WINDOW_UPDATE, which follows its SETTINGS.
  for (let wait = 0; session.state.remoteWindowSize! < 2 ** 20 && wait < 100; wait++)
    await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(session.state.remoteWindowSize, 4 * (4 * 1024 * 1024 + 5));
});
