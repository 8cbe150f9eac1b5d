import type { ConnectRouter, Transport } from "@connectrpc/connect";
import type { AuthenticateResponse } from "../../gen/airlock/identity/v1/identity_pb.js";
import type { Registry } from "prom-client";
import type { Env } from "./config.js";
import type { Lifecycle } from "./lifecycle.js";
import type { Logger } from "./log.js";
import type { Pool } from "./pg.js";
import type { ServiceCredentials } from "./service-credentials.js";
import type { SharedCache } from "./shared-cache.js";

/** What the runtime hands every service: shared connections and settings. */
export interface Platform {
  env: Env;
  log: Logger;
  pool: Pool;
  cache: SharedCache;
  credentials: ServiceCredentials;
  lifecycle: Lifecycle;
  /** True on the embedded database (PGlite): one connection, and no COPY. */
  embeddedDatabase: boolean;
  /** Where the process keeps local state (the embedded database, the proxy's records). */
  dataDir: string;
  /** How long a stopping service waits for in-flight calls. */
  shutdownGraceMs: number;
  /** Where services register their Prometheus metrics (served on /metrics). */
  registry: Registry;
  /** A transport to another service, in-process or over the network, signed with a service credential. */
  peer(name: string): Transport;
  /** Whether `peer(name)` can work: the service is hosted here or its URL is configured. */
  hasPeer(name: string): boolean;
}

/** A service as the runtime hosts it, alone or beside the others. */
export interface ServiceModule {
  name: string;
  /** Fully-qualified protobuf service names, for grpc.health.v1. */
  serviceNames: readonly string[];
  routes(router: ConnectRouter): void;
  /** RPCs callable without a credential (see AuthOptions.publicRpcs). */
  publicRpcs: readonly string[];
  /** Other ports the service listens on, by name (the proxy's `llm`). */
  endpoints?: Record<string, string>;
  /**
   * Services it cannot serve without. Where they run in another process,
   * `/readyz` asks them too, so a service is ready only when they answer.
   * The proxy does not name audit: its spool keeps calls going without it.
   */
  dependsOn?: readonly string[];
  /** Set by identity: how tokens of principals are resolved in its own process. */
  authenticate?: (token: string) => Promise<AuthenticateResponse>;
}

/**
 * A service the runtime can host. `configure` reads and checks the service's
 * settings before anything is opened, so a bad value stops start-up at once;
 * the function it returns builds the service on the platform.
 */
export interface ServiceDefinition {
  name: string;
  configure(env: Env): (platform: Platform) => Promise<ServiceModule>;
}
