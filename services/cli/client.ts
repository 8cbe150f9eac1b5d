import {
  Code,
  ConnectError,
  createClient,
  type Client,
  type Interceptor,
} from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";
import { codeName } from "../kit/errors.js";

export interface ClientOptions {
  url: string;
  token: string | undefined;
  /**
   * Where individual services are when they run apart (AIRLOCK_<SVC>_URL, as
   * the services themselves use); `url` serves the others.
   */
  serviceUrls?: Readonly<Record<string, string>>;
}

/** A generated client for `service` at the CLI's server, sending the CLI's token. */
export function connect<T extends DescService>(service: T, options: ClientOptions): Client<T> {
  const name = /^airlock\.([a-z]+)\.v1\./.exec(service.typeName)?.[1] ?? "";
  const baseUrl = options.serviceUrls?.[name] ?? options.url;
  const bearer: Interceptor = (next) => (req) => {
    if (options.token) req.header.set("authorization", `Bearer ${options.token}`);
    return next(req);
  };
  return createClient(
    service,
    createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: [bearer] }),
  );
}

/** One line for a failed call: what the server said, or why it could not be reached. */
export function describeFailure(err: unknown, url: string): string {
  const e = ConnectError.from(err);
  if (e.code === Code.Unavailable || e.code === Code.Unknown) {
    const cause = (e.cause as { code?: string } | undefined)?.code;
    if (cause === "ECONNREFUSED")
      return `cannot reach ${url}: is airlock serve running? (set --url or AIRLOCK_URL)`;
  }
  return `${codeName(e.code)}: ${e.rawMessage}`;
}
