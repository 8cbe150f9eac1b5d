import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { IdentityService } from "../../gen/airlock/identity/v1/identity_pb.js";
import { PolicyService } from "../../gen/airlock/policy/v1/policy_pb.js";
import { OutboxAuditEvents } from "../kit/audit-events.js";
import { shipOutbox } from "../kit/outbox-shipper.js";
import { migrate } from "../kit/pg.js";
import type { ServiceDefinition } from "../kit/service-module.js";
import { readPolicyConfig } from "./config.js";
import { PolicyEngine } from "./engine.js";
import { PgPolicyStore } from "./pg-store.js";
import { Policy } from "./policy.js";
import { policyRoutes } from "./routes.js";
import { SubjectResolver } from "./subjects.js";

const migrations = fileURLToPath(new URL("./migrations", import.meta.url));

/** Composes the policy service from its settings and the platform's connections. */
export const policyDefinition: ServiceDefinition = {
  name: "policy",
  configure: (env) => {
    const config = readPolicyConfig(env);
    return async (platform) => {
      const log = platform.log.child({ component: "policy" });
      await migrate(platform.pool, "policy", migrations, log);
      shipOutbox(platform, "policy", log);
      const store = new PgPolicyStore(platform.pool, new OutboxAuditEvents("policy"));
      const engine = new PolicyEngine(store, platform.cache, log);
      await engine.start(config.catchUpEveryMs);
      platform.lifecycle.onStop("policy engine", () => engine.stop());
      const subjects = new SubjectResolver(
        createClient(IdentityService, platform.peer("identity")),
        config.subjectTtlMs,
      );
      return {
        name: "policy",
        serviceNames: [PolicyService.typeName],
        routes: policyRoutes(new Policy({ store, engine, subjects })),
        publicRpcs: [],
        dependsOn: ["identity"],
      };
    };
  },
};
