import { createClient, type Client } from "@connectrpc/connect";
import {
  PolicyService,
  type CheckRequest,
  type CheckResponse,
} from "../../gen/airlock/policy/v1/policy_pb.js";
import type { Platform } from "./service-module.js";
import type { SharedCache } from "./shared-cache.js";

/** The policy service publishes `<org id> <version>` here after every change. */
export const policyChangedChannel = "airlock:policy:changed";

export function parsePolicyChange(message: string): { orgId: string; version: bigint } | undefined {
  const [orgId, version] = message.split(" ");
  if (!orgId || !version || !/^\d+$/.test(version)) return undefined;
  return { orgId, version: BigInt(version) };
}

interface OrgDecisions {
  version: bigint;
  decisions: Map<string, { answer: CheckResponse; expires: number }>;
}

/**
 * A caller-side cache of policy decisions, keyed by (subject, org, object,
 * action, policy version). A change message moves the org to its new
 * version, which leaves every older decision unreachable at once; `ttlMs`
 * bounds how long a decision can outlive a lost message.
 */
export class DecisionCache {
  private readonly orgs = new Map<string, OrgDecisions>();
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(
    private readonly policy: Client<typeof PolicyService>,
    private readonly cache: SharedCache,
    private readonly options: { ttlMs: number; maxPerOrg: number } = {
      ttlMs: 60_000,
      maxPerOrg: 50_000,
    },
    private readonly now: () => number = Date.now,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.cache.subscribe(policyChangedChannel, (message) => {
      const change = parsePolicyChange(message);
      if (change) this.advance(change.orgId, change.version);
    });
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.();
  }

  async check(
    request: Pick<CheckRequest, "subject" | "orgId" | "object" | "action">,
  ): Promise<CheckResponse> {
    const key = `${request.subject}\n${request.object}\n${request.action}`;
    const hit = this.orgs.get(request.orgId)?.decisions.get(key);
    if (hit && hit.expires > this.now()) return hit.answer;
    const answer = await this.policy.check(request);
    const org = this.advance(request.orgId, answer.policyVersion);
    // An answer made at an older version than the one already announced is not kept.
    if (org.version === answer.policyVersion) {
      if (org.decisions.size >= this.options.maxPerOrg) org.decisions.clear();
      org.decisions.set(key, { answer, expires: this.now() + this.options.ttlMs });
    }
    return answer;
  }

  private advance(orgId: string, version: bigint): OrgDecisions {
    let org = this.orgs.get(orgId);
    if (!org || org.version < version) {
      org = { version, decisions: new Map() };
      this.orgs.set(orgId, org);
    }
    return org;
  }
}

/** A service's DecisionCache on the policy service, following its change messages until the process stops. */
export async function startDecisionCache(
  platform: Platform,
  owner: string,
): Promise<DecisionCache> {
  const decisions = new DecisionCache(
    createClient(PolicyService, platform.peer("policy")),
    platform.cache,
  );
  await decisions.start();
  platform.lifecycle.onStop(`${owner} decision cache`, () => decisions.stop());
  return decisions;
}
