import { connect, type Socket } from "node:net";
import type { OcsfEvent } from "./ocsf.js";
import { DeliveryError, type Sink } from "./sink.js";
import { octetFrame, syslogMessage, type SyslogHeader } from "./syslog-format.js";

/** A syslog receiver over TCP and the header fields this sender stamps. */
export interface SyslogOptions extends SyslogHeader {
  host: string;
  port: number;
  timeoutMs: number;
}

/**
 * RFC 5424 messages over TCP with octet-counting framing (RFC 6587), one
 * message per event, on one connection that is opened when needed and
 * dropped on any error or when the receiver closes it, so the next batch
 * reconnects. A batch counts as delivered when the kernel has taken its
 * bytes: plain TCP syslog has no acknowledgement, so a receiver that dies
 * with bytes unread in its socket loses them (RELP would close that gap).
 */
export class SyslogSink implements Sink {
  private socket: Socket | undefined;

  constructor(private readonly options: SyslogOptions) {}

  async send(events: readonly OcsfEvent[], signal: AbortSignal): Promise<void> {
    const socket = await this.connected(signal);
    const data = events.map((e) => octetFrame(syslogMessage(e, this.options))).join("");
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        clearTimeout(timer);
        this.drop(socket);
        reject(new DeliveryError(`syslog write to ${this.where()} failed: ${err.message}`));
      };
      // A receiver that stops reading fills the socket buffer; do not wait forever.
      const timer = setTimeout(() => fail(new Error("timed out")), this.options.timeoutMs);
      socket.write(data, (err) => (err ? fail(err) : (clearTimeout(timer), resolve())));
    });
  }

  async close(): Promise<void> {
    const socket = this.socket;
    if (!socket) return;
    this.socket = undefined;
    // Let written bytes go out with a clean close, but do not wait on a receiver that hangs.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => (socket.destroy(), resolve()), 1000);
      socket.once("close", () => (clearTimeout(timer), resolve()));
      socket.end();
    });
  }

  private where(): string {
    return `${this.options.host}:${this.options.port}`;
  }

  private drop(socket: Socket): void {
    if (this.socket === socket) this.socket = undefined;
    socket.destroy();
  }

  private connected(signal: AbortSignal): Promise<Socket> {
    if (this.socket) return Promise.resolve(this.socket);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: this.options.host, port: this.options.port, signal });
      socket.setTimeout(this.options.timeoutMs, () =>
        socket.destroy(new Error("connect timed out")),
      );
      socket.once("connect", () => {
        socket.setTimeout(0);
        socket.setKeepAlive(true);
        socket.removeListener("error", refused);
        // From here on a failure or the receiver hanging up only drops the connection.
        socket.on("error", () => this.drop(socket));
        socket.on("end", () => this.drop(socket));
        socket.on("close", () => this.drop(socket));
        this.socket = socket;
        resolve(socket);
      });
      const refused = (err: Error) =>
        reject(new DeliveryError(`syslog connect to ${this.where()} failed: ${err.message}`));
      socket.once("error", refused);
    });
  }
}
