import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AuditService } from "../../gen/airlock/audit/v1/audit_pb.js";
import { startDecisionCache } from "../kit/decision-cache.js";
import { ConfigError } from "../kit/config.js";
import { createPool, migrate, type Pool } from "../kit/pg.js";
import type { Platform, ServiceDefinition } from "../kit/service-module.js";
import { Audit } from "./audit.js";
import { copyRows, insertRows } from "./copy.js";
import { publicKeysFromPem } from "./checkpoint.js";
import { readAuditConfig } from "./config.js";
import { AppendNotifier } from "./notifier.js";
import { Partitions } from "./partitions.js";
import { PgAuditPurger } from "./pg-purge.js";
import { PgAuditReader } from "./pg-reader.js";
import { PgAuditWriter } from "./pg-store.js";
import { restrictServingRole } from "./roles.js";
import { auditRoutes } from "./routes.js";
import { loadSigningKey, registerSigningKey } from "./signing-key.js";
import { readExportConfig } from "./export/config.js";
import { PgExportCursors } from "./export/pg-cursors.js";
import { ExportLease } from "./export/lease.js";
import { PgExportSource } from "./export/pg-source.js";
import { startExporters } from "./export/start-exporters.js";

const migrations = fileURLToPath(new URL("./migrations", import.meta.url));

/** Composes the audit service: the log in Postgres, its checkpoints, and who may read it. */
export const auditDefinition: ServiceDefinition = {
  name: "audit",
  configure: (env) => {
    const config = readAuditConfig(env);
    const exportConfig = readExportConfig(env);
    return async (platform) => {
      const log = platform.log.child({ component: "audit" });
      const owner = await ownerPool(config.ownerDatabaseUrl, platform);
      await migrate(owner, "audit", migrations, log);
      if (owner !== platform.pool) {
        await restrictServingRole(owner, platform.pool);
        log.info("audit: the serving role reads and appends; deletes and DDL run as the owner");
      }
      const key = await loadSigningKey(
        config.signingKeyFile,
        join(platform.dataDir, "keys", "audit-signing-key.pem"),
      );
      await registerSigningKey(platform.pool, key);
      const partitions = new Partitions(owner);
      await partitions.ensureAhead(Date.now(), config.partitionDaysAhead);
      const writer = new PgAuditWriter(
        platform.pool,
        partitions,
        { key, every: config.checkpointEvery },
        platform.embeddedDatabase ? insertRows : copyRows,
      );
      const reader = new PgAuditReader(platform.pool);
      const notifier = new AppendNotifier(platform.cache, log);
      await notifier.start();
      platform.lifecycle.onStop("audit notifier", () => notifier.stop());
      const decisions = await startDecisionCache(platform, "audit");
      let exporters: ReturnType<typeof startExporters> | undefined;
      const lease = new ExportLease(
        platform.pool,
        exportConfig.leaseMs,
        () =>
          (exporters = startExporters({
            config: exportConfig,
            source: new PgExportSource(reader),
            cursors: new PgExportCursors(platform.pool),
            log,
            registry: platform.registry,
          })),
        log,
      );
      if (exportConfig.sinks.length > 0) {
        await lease.begin();
        platform.lifecycle.onStop("audit exporters", () => lease.close());
      }
      notifier.onAppend(() => exporters?.wake());
      const audit = new Audit({
        writer,
        reader,
        check: (request) => decisions.check(request),
        notifier,
        publicKeys: async () =>
          publicKeysFromPem((await reader.signingKeys()).map((k) => k.publicKeyPem)),
      });
      const housekeeping = setInterval(() => {
        writer
          .checkpointMovedChains()
          .then(() => partitions.ensureAhead(Date.now(), config.partitionDaysAhead))
          .catch((err: unknown) =>
            log.error({ err }, "audit checkpoint or partition upkeep failed"),
          );
      }, config.checkpointIntervalMs);
      platform.lifecycle.onStop("audit checkpoints", async () => {
        clearInterval(housekeeping);
        // The last records before a stop get their signature now, not at the next start.
        await writer.checkpointMovedChains().catch(() => undefined);
      });
      log.info({ keyId: key.keyId }, "audit checkpoints signed");
      return {
        name: "audit",
        serviceNames: [AuditService.typeName],
        routes: auditRoutes({
          audit,
          reader,
          purger: new PgAuditPurger(owner, config.purgeBatch),
          tailPollMs: config.tailPollMs,
        }),
        publicRpcs: [],
        dependsOn: ["identity", "policy"],
      };
    };
  },
};

/** The pool for what only the audit schema's owner may do; the platform's own when no owner is configured. */
async function ownerPool(url: string | undefined, platform: Platform): Promise<Pool> {
  if (!url) return platform.pool;
  if (platform.embeddedDatabase)
    throw new ConfigError(
      "AIRLOCK_AUDIT_OWNER_DATABASE_URL needs DATABASE_URL: the embedded database has one role",
    );
  const pool = createPool(url, { max: 4, applicationName: "airlock-audit-owner" });
  platform.lifecycle.onStop("audit owner pool", () => pool.end());
  await pool.query("SELECT 1");
  return pool;
}
