import test from "ava";
import { uuidv7 } from "./ids.js";

const shape = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("uuidv7 is an RFC 9562 version 7 UUID carrying its time in milliseconds", (t) => {
  const ms = Date.UTC(2026, 10, 27, 12, 30, 45, 678);
  const id = uuidv7(ms);
  t.regex(id, shape);
  t.is(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), ms);
});

test("uuidv7 ids made later sort after earlier ones, and none repeats", (t) => {
  const start = Date.now();
  const ids = Array.from({ length: 10_000 }, (_, i) => uuidv7(start + Math.floor(i / 100)));
  t.is(new Set(ids).size, ids.length);
  for (let i = 100; i < ids.length; i += 100)
    t.true(ids[i - 1]! < ids[i]!, `${ids[i - 1]} < ${ids[i]}`);
  t.true(ids.every((id) => shape.test(id)));
});
