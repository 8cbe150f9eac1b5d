import test from "ava";
import { parseRetryAfter } from "./sink.js";

test("Retry-After is read as seconds or as a date", (t) => {
  const now = Date.parse("2026-03-20T10:00:00Z");
  t.is(parseRetryAfter("120", now), 120_000);
  t.is(parseRetryAfter("Fri, 20 Mar 2026 10:00:30 GMT", now), 30_000);
  t.is(parseRetryAfter("Fri, 20 Mar 2026 09:00:00 GMT", now), 0, "a date gone by means now");
  t.is(parseRetryAfter("soon", now), undefined);
  t.is(parseRetryAfter(null, now), undefined);
});
