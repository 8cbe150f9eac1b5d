import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Registry } from "prom-client";
import type { Addr } from "./config.js";
import type { HealthStatus } from "./health.js";
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
const http2Preface = Buffer.from("PRI * HTTP/2.0");

/**
 * Serves Connect, gRPC and gRPC-Web, plus `/healthz`, `/readyz` and
 * `/metrics`, on one port. The port speaks HTTP/2 (h2c, for gRPC) and
 * HTTP/1.1 (for curl, Kubernetes probes and Prometheus) by looking at the
 * first bytes of each connection: only HTTP/2 starts with its preface.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const shutdown = new AbortController();
  const rpc = connectNodeAdapter({
    routes: options.routes,
    interceptors: options.interceptors,
    readMaxBytes: options.maxMessageBytes ?? 4 * 1024 * 1024,
    shutdownSignal: shutdown.signal,
  });
  let inFlight = 0;
  let idle: (() => void) | undefined;

  const handler = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) => {
    inFlight++;
    res.once("close", () => {
      inFlight--;
      if (inFlight === 0) idle?.();
    });
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/healthz")
      return void send(res, 200, "text/plain", "ok\n");
    if (req.method === "GET" && path === "/readyz") return void readyz(options, res);
    if (req.method === "GET" && path === "/metrics") return void metrics(options.registry, res);
    rpc(req as http.IncomingMessage, res as http.ServerResponse);
  };

  const h1 = http.createServer(handler);
  const h2 = http2.createServer({}, handler);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });

  const listener = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.once("readable", () => {
      const head = socket.read(http2Preface.length) ?? socket.read();
      if (head === null) return void socket.destroy();
      socket.unshift(head);
      const isHttp2 = head.subarray(0, 3).equals(http2Preface.subarray(0, 3));
      (isHttp2 ? h2 : h1).emit("connection", socket);
    });
    socket.on("error", () => socket.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(options.addr.port, options.addr.host, () => resolve());
  });
  const port = (listener.address() as net.AddressInfo).port;
  const host = options.addr.host.includes(":") ? `[${options.addr.host}]` : options.addr.host;
  options.log.info({ addr: `${host}:${port}` }, "rpc server listening");

  return {
    port,
    url: `http://${host}:${port}`,
    async close(drainMs = 10_000) {
      options.health.set(false);
      listener.close();
      for (const session of sessions) session.close();
      h1.closeIdleConnections();
      if (inFlight > 0) {
        await Promise.race([
          new Promise<void>((resolve) => (idle = resolve)),
          new Promise((resolve) => setTimeout(resolve, drainMs).unref()),
        ]);
      }
      // Streams still open after the drain window are told to end, then cut.
      shutdown.abort();
      for (const socket of sockets) socket.destroy();
    },
  };
}

function send(
  res: http.ServerResponse | http2.Http2ServerResponse,
  status: number,
  type: string,
  body: string,
): void {
  res.statusCode = status;
  res.setHeader("content-type", type);
  res.end(body);
}

async function readyz(
  options: ServerOptions,
  res: http.ServerResponse | http2.Http2ServerResponse,
): Promise<void> {
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

async function metrics(
  registry: Registry,
  res: http.ServerResponse | http2.Http2ServerResponse,
): Promise<void> {
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
