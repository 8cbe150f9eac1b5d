import type * as http from "node:http";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Registry } from "prom-client";
import type { Addr } from "./config.js";
import type { HealthStatus } from "./health.js";
import { listenHttp, type HttpResponse } from "./http-listener.js";
import type { Logger } from "./log.js";

/** A named dependency check for `/readyz`; it throws when the dependency does not answer. */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<unknown>;
}

export interface ServerOptions {
  addr: Addr;
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  readiness: readonly ReadinessCheck[];
  health: HealthStatus;
  registry: Registry;
  log: Logger;
  /** Largest request message accepted; bigger ones get resource_exhausted. */
  maxMessageBytes?: number;
}

export interface RunningServer {
  /** The bound port (useful when the address asked for port 0). */
  port: number;
  url: string;
  /** Stops accepting, drains in-flight calls for up to `drainMs`, then closes every connection. */
  close(drainMs?: number): Promise<void>;
}

const readinessTimeoutMs = 2000;

/**
 * Serves Connect, gRPC and gRPC-Web, plus `/healthz`, `/readyz` and
 * `/metrics`, on one port speaking HTTP/2 (h2c, for gRPC) and HTTP/1.1 (for
 * curl, Kubernetes probes and Prometheus).
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const shutdown = new AbortController();
  const maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;
  const rpc = connectNodeAdapter({
    routes: options.routes,
    interceptors: options.interceptors,
    readMaxBytes: maxMessageBytes,
    shutdownSignal: shutdown.signal,
  });
  const listener = await listenHttp(
    options.addr,
    (req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method === "GET" && path === "/healthz")
        return void send(res, 200, "text/plain", "ok\n");
      if (req.method === "GET" && path === "/readyz") return void readyz(options, res);
      if (req.method === "GET" && path === "/metrics") return void metrics(options.registry, res);
      rpc(req as http.IncomingMessage, res as http.ServerResponse);
    },
    // A whole message, in its 5-byte envelope, arrives without waiting for grants.
    { http2StreamWindow: maxMessageBytes + 5 },
  );
  options.log.info({ addr: listener.url.slice("http://".length) }, "rpc server listening");
  return {
    port: listener.port,
    url: listener.url,
    async close(drainMs = 10_000) {
      options.health.set(false);
      // Streams still open after the drain window are told to end, then cut.
      await listener.close(drainMs, () => shutdown.abort());
    },
  };
}

function send(res: HttpResponse, status: number, type: string, body: string): void {
  res.statusCode = status;
  res.setHeader("content-type", type);
  res.end(body);
}

async function readyz(options: ServerOptions, res: HttpResponse): Promise<void> {
  const results = await Promise.all(
    options.readiness.map(async ({ name, check }) => {
      try {
        await withTimeout(check(), readinessTimeoutMs);
        return [name, "ok"] as const;
      } catch (err) {
        return [name, `failing: ${(err as Error).message}`] as const;
      }
    }),
  );
  const ready = results.every(([, state]) => state === "ok");
  send(
    res,
    ready ? 200 : 503,
    "application/json",
    JSON.stringify({ ready, checks: Object.fromEntries(results) }) + "\n",
  );
}

async function metrics(registry: Registry, res: HttpResponse): Promise<void> {
  send(res, 200, registry.contentType, await registry.metrics());
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms}ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
