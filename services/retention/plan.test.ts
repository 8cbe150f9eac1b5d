import test from "ava";
import { readRetentionConfig } from "./config.js";
import { parseRetention, ruleSetProblem } from "./durations.js";
import { effectiveRules, purgePlan, receipts, runReport } from "./plan.js";
import type { Hold, StoredRule } from "./records.js";

const day = 86_400_000;
const defaults = { content: 30, metadata: 400, receipts: null };
const rule = (orgId: string, dataClass: StoredRule["dataClass"], days: number | null) =>
  ({ orgId, dataClass, days, updatedBy: "usr_a", updatedAt: new Date(0) }) as StoredRule;

test("retention durations: whole days or forever, nothing else", (t) => {
  t.is(parseRetention("30d"), 30);
  t.is(parseRetention("forever"), null);
  for (const bad of ["", "30", "0d", "1.5d", "30 days", "12h", "36501d", "Forever"])
    t.is(parseRetention(bad), undefined, bad);
});

test("a rule set keeps receipts at least as long as metadata, and content no longer", (t) => {
  t.is(ruleSetProblem({ content: 30, metadata: 400, receipts: null }), undefined);
  t.is(ruleSetProblem({ content: 30, metadata: 400, receipts: 400 }), undefined);
  t.regex(ruleSetProblem({ content: 30, metadata: 400, receipts: 399 })!, /receipts \(399d\)/);
  t.regex(ruleSetProblem({ content: 30, metadata: null, receipts: 9000 })!, /metadata \(forever\)/);
  t.regex(ruleSetProblem({ content: null, metadata: 400, receipts: null })!, /content \(forever\)/);
});

test("defaults come from the environment and are checked the same way", (t) => {
  t.deepEqual(readRetentionConfig({}).defaults, defaults);
  t.deepEqual(
    readRetentionConfig({ AIRLOCK_RETENTION_CONTENT: "7d", AIRLOCK_RETENTION_RECEIPTS: "3650d" })
      .defaults,
    { content: 7, metadata: 400, receipts: 3650 },
  );
  t.throws(() => readRetentionConfig({ AIRLOCK_RETENTION_CONTENT: "7 days" }), {
    message: /AIRLOCK_RETENTION_CONTENT="7 days": expected "<days>d"/,
  });
  t.throws(() => readRetentionConfig({ AIRLOCK_RETENTION_RECEIPTS: "30d" }), {
    message: /receipts \(30d\) cannot be kept shorter than metadata \(400d\)/,
  });
  t.is(readRetentionConfig({ AIRLOCK_RETENTION_INTERVAL: "0s" }).intervalMs, 0);
});

test("an org's own rules override the defaults class by class", (t) => {
  const stored = [rule("org_a", "metadata", 60), rule("org_b", "content", 7)];
  t.deepEqual(effectiveRules("org_a", stored, defaults).rules, {
    content: 30,
    metadata: 60,
    receipts: null,
  });
  t.deepEqual(effectiveRules("org_c", stored, defaults).rules, defaults);
});

test("a plan has cutoffs per org with rules, the defaults for the rest, forever as none", (t) => {
  const now = 1_000 * day;
  const plan = purgePlan({
    nowMs: now,
    defaults,
    stored: [rule("org_a", "metadata", 60)],
    holds: [],
  });
  t.deepEqual(plan.orgs.get("org_a")!.cutoffs, {
    content: now - 30 * day,
    metadata: now - 60 * day,
    receipts: undefined,
  });
  t.deepEqual(plan.defaults.cutoffs, {
    content: now - 30 * day,
    metadata: now - 400 * day,
    receipts: undefined,
  });
});

test("the report and receipts name each org's rules, counts, holds and resumed runs", (t) => {
  const now = 1_000 * day;
  const hold = { id: "hold_1", caseId: "CASE-1" } as Hold;
  const plan = purgePlan({
    nowMs: now,
    defaults,
    stored: [rule("org_b", "metadata", 60)],
    holds: [hold],
  });
  const report = runReport(
    plan,
    {
      orgs: [
        {
          orgId: "org_b",
          purged: { content: 5, metadata: 3, receipts: 0 },
          held: [{ holdId: "hold_1", records: 2 }],
        },
      ],
      partitionsTruncated: 1,
      tokens: [{ orgId: "org_a", tokens: 4 }],
    },
    ["run_old"],
  );
  t.deepEqual(
    report.orgs.map((o) => [o.orgId, o.classes.map((c) => c.purged), o.tokensPurged]),
    [
      ["org_a", [0, 0, 0], 4],
      ["org_b", [5, 3, 0], 0],
    ],
  );
  t.deepEqual(report.orgs[1]!.held, [{ holdId: "hold_1", caseId: "CASE-1", records: 2 }]);
  const [, b] = receipts(
    { id: "run_1", trigger: "manual", requestedBy: "usr_x", durationMs: 12 },
    report,
  );
  t.like(b, { kind: "retention.run", orgId: "org_b", actor: "usr_x", subject: "run_1" });
  t.like(b!.attributes, {
    metadata_rule: "60d",
    metadata_before: new Date(now - 60 * day).toISOString(),
    metadata_purged: 3,
    receipts_rule: "forever",
    receipts_before: "",
    holds: ["hold_1 CASE-1: 2"],
    resumes: ["run_old"],
    partitions_truncated: 1,
  });
});
