import type { AuditEvent, AuditEvents } from "../kit/audit-events.js";
import { inTransaction, type Pool, type PoolClient } from "../kit/pg.js";
import { diffRules, parseRule, ruleText, sortRules, type PolicyRule } from "./rules.js";
import type { OrgRules, PolicyStore, RuleChange } from "./store.js";

export class PgPolicyStore implements PolicyStore {
  constructor(
    private readonly pool: Pool,
    private readonly audit: AuditEvents,
  ) {}

  async load(orgId: string): Promise<OrgRules> {
    const [rules, version] = await Promise.all([
      this.pool.query<{ rule: string }>("SELECT rule FROM policy.rules WHERE org_id = $1", [orgId]),
      this.pool.query<{ version: string }>(
        "SELECT version FROM policy.versions WHERE org_id = $1",
        [orgId],
      ),
    ]);
    return {
      rules: sortRules(rules.rows.map((r) => parseRule(r.rule))),
      version: BigInt(version.rows[0]?.version ?? 0),
    };
  }

  async versions(): Promise<Map<string, bigint>> {
    const { rows } = await this.pool.query<{ org_id: string; version: string }>(
      "SELECT org_id, version FROM policy.versions",
    );
    return new Map(rows.map((r) => [r.org_id, BigInt(r.version)]));
  }

  async change(
    orgId: string,
    change: { add: PolicyRule[]; remove: PolicyRule[] },
    actor: string,
    event: (done: { added: PolicyRule[]; removed: PolicyRule[] }) => AuditEvent,
  ): Promise<RuleChange> {
    return inTransaction(this.pool, async (tx) => {
      await lockOrg(tx, orgId);
      const removed = await deleteRules(tx, orgId, change.remove);
      const added = await insertRules(tx, orgId, change.add, actor);
      return this.finish(tx, orgId, added, removed, event);
    });
  }

  async replace(
    orgId: string,
    rules: PolicyRule[],
    actor: string,
    event: (done: { added: PolicyRule[]; removed: PolicyRule[] }) => AuditEvent,
  ): Promise<RuleChange> {
    return inTransaction(this.pool, async (tx) => {
      await lockOrg(tx, orgId);
      const { rows } = await tx.query<{ rule: string }>(
        "SELECT rule FROM policy.rules WHERE org_id = $1",
        [orgId],
      );
      const diff = diffRules(
        rows.map((r) => parseRule(r.rule)),
        rules,
      );
      const removed = await deleteRules(tx, orgId, diff.removed);
      const added = await insertRules(tx, orgId, diff.added, actor);
      return this.finish(tx, orgId, added, removed, event);
    });
  }

  async record(event: AuditEvent): Promise<void> {
    await this.audit.emit(this.pool, event);
  }

  private async finish(
    tx: PoolClient,
    orgId: string,
    added: PolicyRule[],
    removed: PolicyRule[],
    event: (done: { added: PolicyRule[]; removed: PolicyRule[] }) => AuditEvent,
  ): Promise<RuleChange> {
    const { rows } = await tx.query<{ version: string }>(
      added.length + removed.length > 0
        ? "UPDATE policy.versions SET version = version + 1, updated_at = now() WHERE org_id = $1 RETURNING version"
        : "SELECT version FROM policy.versions WHERE org_id = $1",
      [orgId],
    );
    await this.audit.emit(tx, event({ added, removed }));
    return {
      added: sortRules(added),
      removed: sortRules(removed),
      version: BigInt(rows[0]!.version),
    };
  }
}

/** Serialises changes to one org: the version row is created once, then locked by each change. */
async function lockOrg(tx: PoolClient, orgId: string): Promise<void> {
  await tx.query(
    "INSERT INTO policy.versions (org_id, version) VALUES ($1, 0) ON CONFLICT DO NOTHING",
    [orgId],
  );
  await tx.query("SELECT version FROM policy.versions WHERE org_id = $1 FOR UPDATE", [orgId]);
}

async function insertRules(
  tx: PoolClient,
  orgId: string,
  rules: PolicyRule[],
  actor: string,
): Promise<PolicyRule[]> {
  if (rules.length === 0) return [];
  const { rows } = await tx.query<{ rule: string }>(
    `INSERT INTO policy.rules (org_id, rule, created_by)
     SELECT $1, unnest($2::text[]), $3 ON CONFLICT DO NOTHING RETURNING rule`,
    [orgId, rules.map(ruleText), actor],
  );
  return rows.map((r) => parseRule(r.rule));
}

async function deleteRules(
  tx: PoolClient,
  orgId: string,
  rules: PolicyRule[],
): Promise<PolicyRule[]> {
  if (rules.length === 0) return [];
  const { rows } = await tx.query<{ rule: string }>(
    "DELETE FROM policy.rules WHERE org_id = $1 AND rule = ANY($2::text[]) RETURNING rule",
    [orgId, rules.map(ruleText)],
  );
  return rows.map((r) => parseRule(r.rule));
}
