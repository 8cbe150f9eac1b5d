import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { AuditService } from "../../gen/airlock/audit/v1/audit_pb.js";
import { IdentityService } from "../../gen/airlock/identity/v1/identity_pb.js";
import { RetentionService } from "../../gen/airlock/retention/v1/retention_pb.js";
import { OutboxAuditEvents } from "../kit/audit-events.js";
import { ConfigError } from "../kit/config.js";
import { startDecisionCache } from "../kit/decision-cache.js";
import { shipOutbox } from "../kit/outbox-shipper.js";
import { migrate } from "../kit/pg.js";
import type { ServiceDefinition } from "../kit/service-module.js";
import { readRetentionConfig } from "./config.js";
import { retentionMetrics } from "./metrics.js";
import { PgRetentionStore } from "./pg-store.js";
import { Retention } from "./retention.js";
import { retentionRoutes } from "./routes.js";
import { RunLock } from "./run-lock.js";
import { Runner } from "./runner.js";

const migrations = fileURLToPath(new URL("./migrations", import.meta.url));

/** Composes the retention service: rules and holds in Postgres, runs through audit's Purge. */
export const retentionDefinition: ServiceDefinition = {
  name: "retention",
  configure: (env) => {
    const config = readRetentionConfig(env);
    return async (platform) => {
      // Without audit there is nothing to purge and nowhere to put receipts.
      if (!platform.hasPeer("audit"))
        throw new ConfigError(
          "AIRLOCK_AUDIT_URL is not set: retention purges through the audit service",
        );
      const log = platform.log.child({ component: "retention" });
      await migrate(platform.pool, "retention", migrations, log);
      shipOutbox(platform, "retention", log);
      const store = new PgRetentionStore(platform.pool, new OutboxAuditEvents("retention"));
      const runner = new Runner({
        store,
        lock: new RunLock(platform.pool, !platform.embeddedDatabase),
        audit: createClient(AuditService, platform.peer("audit")),
        identity: createClient(IdentityService, platform.peer("identity")),
        config,
        log,
        metrics: retentionMetrics(platform.registry),
      });
      const stopSchedule = await runner.schedule();
      platform.lifecycle.onStop("retention schedule", async () => stopSchedule());
      const decisions = await startDecisionCache(platform, "retention");
      return {
        name: "retention",
        serviceNames: [RetentionService.typeName],
        routes: retentionRoutes(
          new Retention({ store, runner, config, check: (r) => decisions.check(r) }),
        ),
        publicRpcs: [],
        dependsOn: ["identity", "policy", "audit"],
      };
    };
  },
};
