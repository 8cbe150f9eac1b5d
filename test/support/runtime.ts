import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { IdentityService } from "../../gen/airlock/identity/v1/identity_pb.js";
import { startRuntime, type Runtime } from "../../services/kit/runtime.js";
import { identityDefinition } from "../../services/identity/run.js";
import type { ServiceDefinition } from "../../services/kit/service-module.js";
import { connectTo } from "./clients.js";
import { createTestDatabase, redisUrl } from "./env.js";
import { LogCapture } from "./log-capture.js";

export interface Harness {
  runtime: Runtime;
  logs: LogCapture;
  databaseUrl: string;
  /** The process's data directory (the proxy spools its records in spool/). */
  dataDir: string;
  /** An identity client over the network, calling with `token` (or none). */
  client(token?: string, httpVersion?: "1.1" | "2"): Client<typeof IdentityService>;
  /** A client of any hosted service over the network, calling with `token` (or none). */
  connect<S extends DescService>(service: S, token?: string): Client<S>;
  close(): Promise<void>;
}

/** Identity alone in this process on a port of its own, over a fresh database and the real Redis. */
export function startIdentity(env: Record<string, string> = {}): Promise<Harness> {
  return startServices([identityDefinition], env);
}

/** `services` in this process, as all-in-one hosts them, over a fresh database and the real Redis. */
export async function startServices(
  services: readonly ServiceDefinition[],
  env: Record<string, string> = {},
): Promise<Harness> {
  const db = await createTestDatabase();
  const dataDir = await mkdtemp(join(tmpdir(), "airlock-test-"));
  const logs = new LogCapture();
  const runtime = await startRuntime({
    services,
    split: false,
    env: {
      DATABASE_URL: db.url,
      REDIS_URL: redisUrl,
      AIRLOCK_RPC_ADDR: "127.0.0.1:0",
      AIRLOCK_HTTP_ADDR: "127.0.0.1:0",
      AIRLOCK_DATA_DIR: dataDir,
      AIRLOCK_LOG_LEVEL: "debug",
      AIRLOCK_SHUTDOWN_GRACE: "1s",
      ...env,
    },
    logDestination: logs,
  });
  return {
    runtime,
    logs,
    databaseUrl: db.url,
    dataDir,
    client(token, httpVersion = "2") {
      return connectTo(IdentityService, runtime.server.url, token, httpVersion);
    },
    connect(service, token) {
      return connectTo(service, runtime.server.url, token);
    },
    async close() {
      await runtime.stop();
      await db.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
