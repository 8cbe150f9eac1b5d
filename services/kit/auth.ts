import type { Interceptor } from "@connectrpc/connect";
import type { AuthenticateResponse } from "../../gen/airlock/identity/v1/identity_pb.js";
import { callerKey, type Caller } from "./caller.js";
import { unauthenticated } from "./errors.js";
import { serviceCredentialPrefix, type ServiceCredentials } from "./service-credentials.js";

export interface AuthOptions {
  /** The services this process hosts: a service credential must be issued for one of them. */
  audiences: readonly string[];
  credentials: ServiceCredentials;
  /** Resolves a principal's token; throws an `unauthenticated` DomainError when it is not valid. */
  authenticate: (token: string) => Promise<AuthenticateResponse>;
  /**
   * RPCs that may be called without a credential, as `package.Service/Method`
   * or `package.Service` for a whole service. Everything else needs one.
   */
  publicRpcs?: readonly string[];
}

/**
 * Server interceptor that authenticates every call: a service credential
 * (`alks.…`) or a principal's token in `Authorization: Bearer`. A credential
 * that is present but invalid is refused even on a public RPC.
 */
export function authInterceptor(options: AuthOptions): Interceptor {
  const open = new Set(options.publicRpcs ?? []);
  return (next) => async (req) => {
    const credential = bearer(req.header.get("authorization"));
    let caller: Caller;
    if (credential === undefined) {
      if (
        !open.has(req.service.typeName) &&
        !open.has(`${req.service.typeName}/${req.method.name}`)
      ) {
        throw unauthenticated("missing credential: send Authorization: Bearer <token>");
      }
      caller = { kind: "anonymous" };
    } else if (credential.startsWith(serviceCredentialPrefix)) {
      const service = options.credentials.verify(credential, options.audiences);
      if (service === undefined) throw unauthenticated("invalid service credential");
      caller = { kind: "service", service };
    } else {
      const answer = await options.authenticate(credential);
      if (!answer.principal) throw unauthenticated();
      caller = {
        kind: "principal",
        principal: answer.principal,
        tokenId: answer.tokenId,
        scopes: answer.scopes,
      };
    }
    req.contextValues.set(callerKey, caller);
    return next(req);
  };
}

function bearer(header: string | null): string | undefined {
  if (header === null) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  // A malformed header is a credential we cannot read, not a missing one.
  return match ? match[1] : "";
}

/** Client interceptor that signs outgoing calls to `audience` with a service credential. */
export function serviceCredentialInterceptor(
  credentials: ServiceCredentials,
  audience: string,
): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${credentials.issue(audience)}`);
    return next(req);
  };
}
