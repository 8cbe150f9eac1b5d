import { create } from "@bufbuild/protobuf";
import test from "ava";
import { RecordSchema } from "../../../gen/airlock/audit/v1/audit_pb.js";
import { advance, after, lagOf } from "./source.js";

const rec = (chainId: string, seq: number) =>
  create(RecordSchema, { id: `${chainId}-${seq}`, chainId, seq: BigInt(seq) });

test("the cursor moves per chain to the last record delivered, never back", (t) => {
  const cursor = advance({ a: 3 }, [rec("a", 4), rec("b", 1), rec("a", 5), rec("b", 2)]);
  t.deepEqual(cursor, { a: 5, b: 2 });
  t.deepEqual(advance(cursor, [rec("a", 2)]), cursor);
});

test("records the cursor has passed are left out, chain by chain", (t) => {
  const kept = after({ a: 2 }, [rec("a", 1), rec("a", 2), rec("a", 3), rec("b", 1)]);
  t.deepEqual(
    kept.map((r) => r.id),
    ["a-3", "b-1"],
  );
});

test("lag counts what the heads hold beyond the cursor, a new chain included", (t) => {
  t.is(lagOf({ a: 5, b: 2 }, { a: 7, b: 2, c: 4 }), 6);
  t.is(lagOf({ a: 9 }, { a: 7 }), 0, "a cursor ahead of a head (purged records) is no debt");
});
