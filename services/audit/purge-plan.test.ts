import test from "ava";
import { dayMs } from "./partitions.js";
import { daysToExamine, holdsOn, purgeMethod, PurgeTally } from "./purge-plan.js";
import type { Hold, PurgePolicy } from "./purge-policy.js";

test("a partition is truncated once at least half its rows go, else purged in batches", (t) => {
  t.is(purgeMethod(0, 0), "keep");
  t.is(purgeMethod(1000, 0), "keep");
  t.is(purgeMethod(1000, 1000), "truncate");
  t.is(purgeMethod(1000, 500), "truncate");
  t.is(purgeMethod(1000, 499), "batches");
  t.is(purgeMethod(1000, 1), "batches");
});

const policy = (overrides: Partial<PurgePolicy>): PurgePolicy => ({
  runId: "run_1",
  orgs: new Map(),
  defaults: {},
  receiptKinds: [],
  holds: [],
  dryRun: false,
  ...overrides,
});

test("only days that begin before some org's latest cutoff are examined, oldest first", (t) => {
  const days = [105, 100, 101, 102, 103, 104];
  t.deepEqual(daysToExamine(days, policy({})), [], "no cutoff: nothing expires");
  t.deepEqual(
    daysToExamine(days, policy({ defaults: { contentBeforeMs: 102 * dayMs } })),
    [100, 101],
  );
  const orgs = new Map([["org_a", { receiptsBeforeMs: 103 * dayMs + 1 }]]);
  t.deepEqual(
    daysToExamine(days, policy({ orgs, defaults: { metadataBeforeMs: 101 * dayMs } })),
    [100, 101, 102, 103],
    "a day the cutoff falls inside is examined",
  );
});

test("a hold applies to the days its window touches, open bounds to all", (t) => {
  const hold = (holdId: string, sinceMs?: number, untilMs?: number): Hold => ({
    holdId,
    orgId: "org_a",
    principalIds: [],
    sinceMs,
    untilMs,
  });
  const holds = [
    hold("open"),
    hold("from_101", 101 * dayMs),
    hold("until_101", undefined, 101 * dayMs),
    hold("noon_100", 100 * dayMs + dayMs / 2, 100 * dayMs + dayMs / 2 + 1),
  ];
  const ids = (day: number) => holdsOn(day, holds).map((h) => h.holdId);
  t.deepEqual(ids(100), ["open", "until_101", "noon_100"]);
  t.deepEqual(ids(101), ["open", "from_101"]);
});

test("a tally lists the orgs with anything purged or held, by id, their holds by id", (t) => {
  const tally = new PurgeTally();
  tally.add("org_b", { content: 2 });
  tally.add("org_b", { metadata: 3, receipts: 1 });
  tally.add("org_c", {});
  tally.addHeld({ holdId: "hold_z", orgId: "org_a", records: 4 });
  tally.addHeld({ holdId: "hold_y", orgId: "org_a", records: 1 });
  tally.addHeld({ holdId: "hold_y", orgId: "org_a", records: 2 });
  tally.addHeld({ holdId: "hold_x", orgId: "org_d", records: 0 });
  tally.truncated();
  t.deepEqual(tally.outcome(), {
    orgs: [
      {
        orgId: "org_a",
        content: 0,
        metadata: 0,
        receipts: 0,
        held: [
          { holdId: "hold_y", records: 3 },
          { holdId: "hold_z", records: 4 },
        ],
      },
      { orgId: "org_b", content: 2, metadata: 3, receipts: 1, held: [] },
    ],
    partitionsTruncated: 1,
  });
});
