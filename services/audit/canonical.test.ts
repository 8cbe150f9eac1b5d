import test from "ava";
import { canonicalJson } from "./canonical.js";

test("canonical JSON sorts keys at every level by UTF-16 code unit, drops undefined, adds no whitespace", (t) => {
  const value = {
    b: [3, { z: null, a: "x" }],
    a: { "\uFFFF": 1, "😀": 2, "": true },
    skipped: undefined,
    é: "\u0000\n",
  };
  t.is(
    canonicalJson(value),
    '{"a":{"":true,"😀":2,"\uFFFF":1},"b":[3,{"a":"x","z":null}],"é":"\\u0000\\n"}',
  );
  t.is(canonicalJson({}), "{}");
  t.is(canonicalJson([]), "[]");
});

test("canonical JSON refuses what JSON cannot hold", (t) => {
  t.throws(() => canonicalJson({ n: Number.NaN }), { instanceOf: TypeError });
  t.throws(() => canonicalJson({ n: 1n }), { instanceOf: TypeError });
});
