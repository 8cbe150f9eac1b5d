import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { IdentityService, Principal } from "../../gen/airlock/identity/v1/identity_pb.js";

/** The subjects a principal acts as: itself, its identity roles and its IdP groups. */
export function subjectsOf(principal: Pick<Principal, "id" | "roles" | "groups">): string[] {
  return [
    principal.id,
    ...principal.roles.map((r) => `role:${r}`),
    ...principal.groups.map((g) => `group:${g}`),
  ];
}

export interface ResolvedSubject {
  /** The subject's org; undefined for a role or group, which exist in every org. */
  orgId: string | undefined;
  subjects: string[];
  known: boolean;
}

/**
 * Resolves a decision's subject to what it acts as, asking identity about
 * principals and keeping answers for `ttlMs`: role changes reach decisions
 * within that time.
 */
export class SubjectResolver {
  private readonly cache = new Map<string, { value: ResolvedSubject; expires: number }>();

  constructor(
    private readonly identity: Client<typeof IdentityService>,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async resolve(subject: string): Promise<ResolvedSubject> {
    if (subject.startsWith("role:") || subject.startsWith("group:")) {
      return { orgId: undefined, subjects: [subject], known: true };
    }
    const hit = this.cache.get(subject);
    if (hit && hit.expires > this.now()) return hit.value;
    let value: ResolvedSubject;
    try {
      const { principal } = await this.identity.getPrincipal({ principalId: subject });
      value = { orgId: principal!.org!.id, subjects: subjectsOf(principal!), known: true };
    } catch (err) {
      if (ConnectError.from(err).code !== Code.NotFound) throw err;
      value = { orgId: undefined, subjects: [subject], known: false };
    }
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(subject, { value, expires: this.now() + this.ttlMs });
    return value;
  }
}
