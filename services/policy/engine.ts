import { parsePolicyChange, policyChangedChannel } from "../kit/decision-cache.js";
import type { Logger } from "../kit/log.js";
import type { SharedCache } from "../kit/shared-cache.js";
import { OrgPolicy } from "./model.js";
import type { PolicyStore } from "./store.js";

/**
 * The loaded policies of the orgs this replica has decided for. A change made
 * here or on another replica drops the org's policy at once (Redis pub/sub),
 * and a periodic comparison of versions catches any message that was lost.
 */
export class PolicyEngine {
  private readonly orgs = new Map<string, Promise<OrgPolicy>>();
  private unsubscribe: (() => Promise<void>) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: PolicyStore,
    private readonly cache: SharedCache,
    private readonly log: Logger,
  ) {}

  async start(catchUpEveryMs: number): Promise<void> {
    this.unsubscribe = await this.cache.subscribe(policyChangedChannel, (message) => {
      const change = parsePolicyChange(message);
      if (change) void this.drop(change.orgId, change.version);
    });
    this.timer = setInterval(() => void this.catchUp(), catchUpEveryMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.unsubscribe?.();
  }

  /** The org's policy, loaded once and shared by concurrent callers. */
  policy(orgId: string): Promise<OrgPolicy> {
    let loading = this.orgs.get(orgId);
    if (!loading) {
      loading = this.store
        .load(orgId)
        .then((loaded) => OrgPolicy.load(orgId, loaded.version, loaded.rules));
      loading.catch(() => this.orgs.delete(orgId));
      this.orgs.set(orgId, loading);
    }
    return loading;
  }

  /** After a change committed here: reload locally and tell the other replicas. */
  async changed(orgId: string, version: bigint): Promise<void> {
    await this.drop(orgId, version);
    await this.cache.publish(policyChangedChannel, `${orgId} ${version}`).catch((err: unknown) => {
      this.log.warn(
        { err: (err as Error).message, orgId },
        "could not announce a policy change; replicas catch up by polling",
      );
    });
  }

  private async drop(orgId: string, version: bigint): Promise<void> {
    const loading = this.orgs.get(orgId);
    if (!loading) return;
    const loaded = await loading.catch(() => undefined);
    if (!loaded || loaded.version < version) {
      if (this.orgs.get(orgId) === loading) this.orgs.delete(orgId);
    }
  }

  private async catchUp(): Promise<void> {
    try {
      const versions = await this.store.versions();
      for (const orgId of this.orgs.keys()) await this.drop(orgId, versions.get(orgId) ?? 0n);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "policy version check failed");
    }
  }
}
