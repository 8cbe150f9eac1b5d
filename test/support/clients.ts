import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";

/** A generated client of `service` at `url`, calling with `token` as its bearer credential (or none). */
export function connectTo<S extends DescService>(
  service: S,
  url: string,
  token?: string,
  httpVersion: "1.1" | "2" = "2",
): Client<S> {
  return createClient(
    service,
    createConnectTransport({
      baseUrl: url,
      httpVersion,
      interceptors:
        token === undefined
          ? []
          : [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))],
    }),
  );
}
