import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { Addr } from "./config.js";

export type HttpRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type HttpResponse = http.ServerResponse | http2.Http2ServerResponse;

export interface HttpListener {
  port: number;
  url: string;
  /** Stops accepting, waits up to `drainMs` for in-flight requests, then cuts every connection. */
  close(drainMs: number, beforeCut?: () => void): Promise<void>;
}

const http2Preface = Buffer.from("PRI * HTTP/2.0");
/** HTTP/2's largest flow-control window, 2^31 − 1. */
const maxWindow = 2 ** 31 - 1;

/**
 * Listens on one port for HTTP/1.1 and HTTP/2 without TLS (h2c), telling
 * them apart by the first bytes of each connection: only HTTP/2 starts with
 * its preface. gRPC needs HTTP/2; curl, probes and most SDKs speak HTTP/1.1.
 *
 * `http2StreamWindow`: how many bytes of a request body an HTTP/2 client
 * may send before this server grants more. HTTP/2's default, 64 KiB, makes
 * a megabyte-sized request wait for some sixteen grants, each one a turn
 * of this process's event loop; a window of the largest request lets it
 * arrive at once. A connection may have four such requests in flight; the
 * session memory allowed is raised to match, so it is still bounded.
 */
export async function listenHttp(
  addr: Addr,
  handler: (req: HttpRequest, res: HttpResponse) => void,
  { http2StreamWindow }: { http2StreamWindow?: number } = {},
): Promise<HttpListener> {
  let inFlight = 0;
  let idle: (() => void) | undefined;
  const counted = (req: HttpRequest, res: HttpResponse) => {
    inFlight++;
    res.once("close", () => {
      inFlight--;
      if (inFlight === 0) idle?.();
    });
    handler(req, res);
  };
  const h1 = http.createServer({ keepAliveTimeout: 65_000 }, counted);
  const window = http2StreamWindow && {
    stream: Math.min(http2StreamWindow, maxWindow),
    connection: Math.min(4 * http2StreamWindow, maxWindow),
  };
  const h2 = http2.createServer(
    window
      ? {
          settings: { initialWindowSize: window.stream },
          // In MB; Node's default, 10, on top of what the connection's window lets clients send.
          maxSessionMemory: 10 + Math.ceil(window.connection / 2 ** 20),
        }
      : {},
    counted,
  );
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    if (window) session.setLocalWindowSize(window.connection);
    session.once("close", () => sessions.delete(session));
  });
  const listener = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
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
    listener.listen(addr.port, addr.host, () => resolve());
  });
  const port = (listener.address() as net.AddressInfo).port;
  const host = addr.host.includes(":") ? `[${addr.host}]` : addr.host;
  return {
    port,
    url: `http://${host}:${port}`,
    async close(drainMs, beforeCut) {
      listener.close();
      for (const session of sessions) session.close();
      h1.closeIdleConnections();
      if (inFlight > 0) {
        await Promise.race([
          new Promise<void>((resolve) => (idle = resolve)),
          new Promise((resolve) => setTimeout(resolve, drainMs).unref()),
        ]);
      }
      beforeCut?.();
      for (const socket of sockets) socket.destroy();
    },
  };
}
