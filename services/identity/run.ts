import { fileURLToPath } from "node:url";
import { IdentityService } from "../../gen/airlock/identity/v1/identity_pb.js";
import { OutboxAuditEvents } from "../kit/audit-events.js";
import { shipOutbox } from "../kit/outbox-shipper.js";
import { migrate } from "../kit/pg.js";
import type { ServiceDefinition } from "../kit/service-module.js";
import { readIdentityConfig } from "./config.js";
import { sessionToProto } from "./convert.js";
import { Identity } from "./identity.js";
import { OidcVerifier } from "./oidc.js";
import { PgIdentityStore } from "./pg-store.js";
import { identityPublicRpcs, identityRoutes } from "./routes.js";
import { SessionCache } from "./session-cache.js";

const migrations = fileURLToPath(new URL("./migrations", import.meta.url));

/** Composes the identity service from its settings and the platform's connections. */
export const identityDefinition: ServiceDefinition = {
  name: "identity",
  configure: (env) => {
    const config = readIdentityConfig(env);
    return async (platform) => {
      const log = platform.log.child({ component: "identity" });
      await migrate(platform.pool, "identity", migrations, log);
      shipOutbox(platform, "identity", log);
      const identity = new Identity({
        store: new PgIdentityStore(platform.pool, new OutboxAuditEvents("identity")),
        sessions: new SessionCache(platform.cache, config.sessionCacheTtlMs),
        settings: config.settings,
        oidc: config.oidc && {
          verifier: new OidcVerifier(config.oidc),
          orgName: config.oidc.orgName,
          adminGroups: config.oidc.adminGroups,
        },
        log,
      });
      return {
        name: "identity",
        serviceNames: [IdentityService.typeName],
        routes: identityRoutes(identity),
        publicRpcs: identityPublicRpcs,
        authenticate: async (token) => sessionToProto(await identity.authenticate(token)),
      };
    };
  },
};
