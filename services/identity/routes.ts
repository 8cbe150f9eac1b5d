import type { ConnectRouter } from "@connectrpc/connect";
import { IdentityService } from "../../gen/airlock/identity/v1/identity_pb.js";
import type { Identity } from "./identity.js";
import { identityService } from "./identity-service.js";

export const identityRoutes = (identity: Identity) => (router: ConnectRouter) =>
  router.service(IdentityService, identityService(identity));

/** Bootstrap and sign-in carry their own proof (first-run state, the IdP's signature). */
export const identityPublicRpcs = [
  `${IdentityService.typeName}/${IdentityService.method.bootstrap.name}`,
  `${IdentityService.typeName}/${IdentityService.method.exchangeOidcToken.name}`,
];
