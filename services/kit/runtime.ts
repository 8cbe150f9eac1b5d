import {
  createClient,
  createRouterTransport,
  type ConnectRouter,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { DestinationStream } from "pino";
import { authInterceptor, serviceCredentialInterceptor } from "./auth.js";
import { ConfigError, redactUrl, type Env } from "./config.js";
import { startEmbeddedPostgres } from "./embedded-pg.js";
import { errorInterceptor } from "./errors.js";
import { HealthStatus, healthService } from "./health.js";
import { Lifecycle } from "./lifecycle.js";
import { createLogger, type Logger } from "./log.js";
import { createRegistry, observeInterceptor } from "./metrics.js";
import { createPool, type Pool } from "./pg.js";
import { readRuntimeConfig, type RuntimeConfig } from "./runtime-config.js";
import { generateServiceSecret, ServiceCredentials } from "./service-credentials.js";
import type { Platform, ServiceDefinition, ServiceModule } from "./service-module.js";
import { MemoryCache, RedisCache, type SharedCache } from "./shared-cache.js";
import { startServer, type RunningServer } from "./server.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import {
  IdentityService,
  type AuthenticateResponse,
} from "../../gen/airlock/identity/v1/identity_pb.js";
import { RemoteAuthenticator } from "./remote-authenticator.js";

export interface RuntimeOptions {
  /** The services this process hosts, in start order (identity first). */
  services: readonly ServiceDefinition[];
  /** True when other processes host the other services. */
  split: boolean;
  env: Env;
  /** Log destination; stdout by default. */
  logDestination?: DestinationStream;
}

export interface Runtime {
  server: RunningServer;
  log: Logger;
  config: RuntimeConfig;
  /** Every port the process serves, by name: `rpc`, and the proxy's `llm`. */
  endpoints: Record<string, string>;
  /** A transport to a service, signed as this process (used by tests and the CLI's in-process checks). */
  peer(name: string): Transport;
  stop(): Promise<void>;
}

/**
 * Starts one process hosting `services` on one RPC port: connections,
 * migrations, interceptors, health, and ordered shutdown.
 */
export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const config = readRuntimeConfig(options.env, options.split);
  const builders = options.services.map((s) => ({ name: s.name, build: s.configure(options.env) }));
  const hosted = options.services.map((s) => s.name);
  const log = createLogger({
    service: hosted.length === 1 ? hosted[0]! : "airlock",
    level: config.logLevel,
    destination: options.logDestination,
  });
  const lifecycle = new Lifecycle(log);
  try {
    const pool = await openPostgres(config, lifecycle, log);
    const cache = await openCache(config, lifecycle);
    const credentials = new ServiceCredentials(
      config.serviceSecret ?? generateServiceSecret(),
      hosted.join("+"),
    );

    const modules = new Map<string, ServiceModule>();
    const interceptors: Interceptor[] = [];
    const routes = (router: ConnectRouter) => {
      for (const m of modules.values()) m.routes(router);
    };
    const peer = (name: string): Transport =>
      hosted.includes(name)
        ? inProcessTransport(name, (r) => modules.get(name)!.routes(r), interceptors, credentials)
        : remoteTransport(name, config, credentials);

    const registry = createRegistry();
    const platform: Platform = {
      env: options.env,
      log,
      pool,
      cache,
      credentials,
      lifecycle,
      registry,
      peer,
      embeddedDatabase: !config.databaseUrl,
      hasPeer: (name) => hosted.includes(name) || config.peerUrls.has(name),
      dataDir: config.dataDir,
      shutdownGraceMs: config.shutdownGraceMs,
    };
    for (const { name, build } of builders) modules.set(name, await build(platform));

    const authenticate =
      [...modules.values()].find((m) => m.authenticate)?.authenticate ??
      (await remoteAuthentication(peer, cache, lifecycle));
    const health = new HealthStatus([...modules.values()].flatMap((m) => m.serviceNames));
    interceptors.push(
      observeInterceptor(registry, log),
      errorInterceptor(log),
      authInterceptor({
        audiences: hosted,
        credentials,
        authenticate,
        publicRpcs: [Health.typeName, ...[...modules.values()].flatMap((m) => m.publicRpcs)],
      }),
    );
    const server = await startServer({
      addr: config.rpcAddr,
      maxMessageBytes: config.rpcMaxMessageBytes,
      routes: (router) => {
        router.service(Health, healthService(health));
        routes(router);
      },
      interceptors,
      readiness: [
        { name: "postgres", check: () => pool.query("SELECT 1") },
        { name: config.redisUrl ? "redis" : "in-process cache", check: () => cache.ping() },
        ...remoteDependencies([...modules.values()], hosted).map((name) => ({
          name,
          check: () => peerServing(peer(name)),
        })),
      ],
      health,
      registry,
      log,
    });
    lifecycle.onStop("rpc server", () => server.close(config.shutdownGraceMs));
    health.set(true);
    const endpoints = Object.assign(
      { rpc: server.url },
      ...[...modules.values()].map((m) => m.endpoints ?? {}),
    ) as Record<string, string>;
    log.info({ services: hosted, url: server.url, endpoints }, "airlock serving");
    return { server, log, config, endpoints, peer, stop: () => lifecycle.stop() };
  } catch (err) {
    await lifecycle.stop();
    throw err;
  }
}

/** The services the hosted ones depend on that run in other processes. */
function remoteDependencies(modules: readonly ServiceModule[], hosted: readonly string[]) {
  const names = new Set(modules.flatMap((m) => m.dependsOn ?? []));
  return [...names].filter((name) => !hosted.includes(name));
}

/** Throws unless the peer's health service says it serves. */
async function peerServing(transport: Transport): Promise<void> {
  const { status } = await createClient(Health, transport).check({ service: "" });
  if (status !== HealthCheckResponse_ServingStatus.SERVING)
    throw new Error(`not serving (${HealthCheckResponse_ServingStatus[status]})`);
}

/** For a process without identity: principals' tokens are resolved by the identity service. */
async function remoteAuthentication(
  peer: (name: string) => Transport,
  cache: SharedCache,
  lifecycle: Lifecycle,
): Promise<(token: string) => Promise<AuthenticateResponse>> {
  const remote = new RemoteAuthenticator(createClient(IdentityService, peer("identity")), cache);
  await remote.start();
  lifecycle.onStop("remote authenticator", () => remote.stop());
  return (token) => remote.authenticate(token);
}

async function openPostgres(
  config: RuntimeConfig,
  lifecycle: Lifecycle,
  log: Logger,
): Promise<Pool> {
  let url = config.databaseUrl?.toString();
  let max = 10;
  if (!url) {
    const embedded = await startEmbeddedPostgres(config.dataDir);
    lifecycle.onStop("embedded postgres", () => embedded.close());
    log.info(
      { dataDir: config.dataDir },
      "using embedded Postgres (set DATABASE_URL to use a server)",
    );
    url = embedded.url;
    max = 1;
  }
  const pool = createPool(url, { max, applicationName: "airlock" });
  lifecycle.onStop("postgres pool", () => pool.end());
  try {
    await pool.query("SELECT 1");
  } catch (err) {
    throw new ConfigError(`cannot reach Postgres at ${redactUrl(url)}: ${(err as Error).message}`);
  }
  return pool;
}

async function openCache(config: RuntimeConfig, lifecycle: Lifecycle): Promise<SharedCache> {
  if (!config.redisUrl) return new MemoryCache();
  const cache = new RedisCache(config.redisUrl.toString());
  lifecycle.onStop("redis", () => cache.close());
  try {
    await cache.ready();
  } catch (err) {
    throw new ConfigError(
      `cannot reach Redis at ${redactUrl(config.redisUrl.toString())}: ${(err as Error).message}`,
    );
  }
  return cache;
}

function remoteTransport(
  name: string,
  config: RuntimeConfig,
  credentials: ServiceCredentials,
): Transport {
  const url = config.peerUrls.get(name);
  if (!url)
    throw new ConfigError(
      `AIRLOCK_${name.toUpperCase()}_URL is not set: this process calls the ${name} service`,
    );
  return createConnectTransport({
    baseUrl: url.toString(),
    httpVersion: "2",
    interceptors: [serviceCredentialInterceptor(credentials, name)],
  });
}

/**
 * An in-process transport through the same interceptors as the network
 * server, built on first use: services name each other while they are being
 * created, before the interceptors exist.
 */
function inProcessTransport(
  name: string,
  routes: (router: ConnectRouter) => void,
  interceptors: Interceptor[],
  credentials: ServiceCredentials,
): Transport {
  let inner: Transport | undefined;
  const get = () =>
    (inner ??= createRouterTransport(routes, {
      router: { interceptors },
      transport: { interceptors: [serviceCredentialInterceptor(credentials, name)] },
    }));
  return {
    unary: (...args) => get().unary(...args),
    stream: (...args) => get().stream(...args),
  };
}
