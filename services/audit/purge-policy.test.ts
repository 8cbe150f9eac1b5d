import test from "ava";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { PurgeRequestSchema } from "../../gen/airlock/audit/v1/audit_pb.js";
import { DomainError } from "../kit/errors.js";
import { latestCutoffMs, purgePolicy } from "./purge-policy.js";

const request = (init: Parameters<typeof create<typeof PurgeRequestSchema>>[1] = {}) =>
  create(PurgeRequestSchema, { runId: "run_1", ...init });

test("a request becomes cutoffs per org, the defaults for the rest, and holds", (t) => {
  const p = purgePolicy(
    request({
      orgs: [{ orgId: "org_a", contentBefore: timestampFromMs(1000) }],
      defaults: { metadataBefore: timestampFromMs(2000), receiptsBefore: timestampFromMs(3000) },
      receiptKinds: ["retention.run", "retention.run"],
      holds: [{ holdId: "hold_1", orgId: "org_a", since: timestampFromMs(500) }],
    }),
  );
  t.deepEqual(p.orgs.get("org_a"), {
    contentBeforeMs: 1000,
    metadataBeforeMs: undefined,
    receiptsBeforeMs: undefined,
  });
  t.like(p.defaults, { metadataBeforeMs: 2000, receiptsBeforeMs: 3000 });
  t.deepEqual(p.receiptKinds, ["retention.run"]);
  t.deepEqual(p.holds, [
    { holdId: "hold_1", orgId: "org_a", principalIds: [], sinceMs: 500, untilMs: undefined },
  ]);
  t.is(latestCutoffMs(p), 3000);
  t.is(latestCutoffMs(purgePolicy(request())), undefined, "no cutoff: keep everything");
});

test("a malformed request is refused naming what is wrong", (t) => {
  const cases: [Parameters<typeof request>[0], RegExp][] = [
    [{ runId: "" }, /^run_id: required/],
    [{ runId: "run 1" }, /^run_id: expected 1-200 printable characters/],
    [{ orgs: [{}] }, /^orgs\[0\]\.org_id: required/],
    [
      { orgs: [{ orgId: "org_a" }, { orgId: "org_a" }] },
      /^orgs\[1\]\.org_id: org_a is listed twice/,
    ],
    [{ defaults: { orgId: "org_a" } }, /^defaults\.org_id: must be empty/],
    [{ receiptKinds: [""] }, /^receipt_kinds\[0\]: empty/],
    [{ holds: [{ orgId: "org_a" }] }, /^holds\[0\]\.hold_id: required/],
    [{ holds: [{ holdId: "h" }] }, /^holds\[0\]\.org_id: required/],
    [
      { holds: [{ holdId: "h", orgId: "org_a", principalIds: [""] }] },
      /^holds\[0\]\.principal_ids: an id is empty/,
    ],
    [
      {
        holds: [
          { holdId: "h", orgId: "org_a" },
          { holdId: "h", orgId: "org_a" },
        ],
      },
      /^holds\[1\]\.hold_id: h is listed twice/,
    ],
    [
      {
        holds: [
          { holdId: "h", orgId: "org_a", since: timestampFromMs(10), until: timestampFromMs(10) },
        ],
      },
      /^holds\[0\] \(h\): until 1970-01-01T00:00:00\.010Z is not after since/,
    ],
  ];
  for (const [init, message] of cases) {
    const err = t.throws(() => purgePolicy(request(init)), { instanceOf: DomainError });
    t.is(err?.kind, "invalid_argument");
    t.regex(err!.message, message);
  }
  t.notThrows(() => purgePolicy(request({ runId: "", dryRun: true })), "a dry run needs no id");
});
