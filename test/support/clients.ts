import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { serviceCredentialInterceptor } from "../../services/kit/auth.js";
import { ServiceCredentials } from "../../services/kit/service-credentials.js";

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

/**
 * A generated client of `service` at `url` calling as the Airlock service
 * `caller` (a service credential signed with `secret`), as the services
 * themselves call each other.
 */
export function connectAsService<S extends DescService>(
  service: S,
  url: string,
  secret: string,
  caller: string,
): Client<S> {
  const audience = /^airlock\.([a-z]+)\.v1\./.exec(service.typeName)?.[1] ?? "";
  return createClient(
    service,
    createConnectTransport({
      baseUrl: url,
      httpVersion: "2",
      interceptors: [
        serviceCredentialInterceptor(new ServiceCredentials(secret, caller), audience),
      ],
    }),
  );
}
