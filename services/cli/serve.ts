import { flagsToEnv } from "../kit/config.js";
import { startRuntime } from "../kit/runtime.js";
import type { ServiceDefinition } from "../kit/service-module.js";
import { auditDefinition } from "../audit/run.js";
import { identityDefinition } from "../identity/run.js";
import { policyDefinition } from "../policy/run.js";
import { proxyDefinition } from "../proxy/run.js";
import { retentionDefinition } from "../retention/run.js";
import { UsageError } from "./output.js";

/** The services this build can host, in start order: identity first, the others authenticate through it. */
const buildableServices: readonly ServiceDefinition[] = [
  identityDefinition,
  policyDefinition,
  auditDefinition,
  proxyDefinition,
  retentionDefinition,
];

/**
 * `airlock serve` hosts every service in one process; `airlock serve NAME…`
 * hosts the named ones, for one container per service.
 */
export async function serve(
  names: string[],
  flags: Record<string, string | undefined>,
): Promise<void> {
  for (const name of names) {
    if (!buildableServices.some((s) => s.name === name)) {
      throw new UsageError(
        `unknown service ${name}: expected one of ${buildableServices.map((s) => s.name).join(", ")}`,
      );
    }
  }
  const services = names.length
    ? buildableServices.filter((s) => names.includes(s.name))
    : buildableServices;
  const runtime = await startRuntime({
    services,
    split: names.length > 0,
    env: { ...process.env, ...flagsToEnv(flags) },
  });
  const stop = (signal: string) => {
    runtime.log.info({ signal }, "shutting down");
    void runtime.stop().then(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
