import test from "ava";
import {
  ConfigError,
  parseDuration,
  readAddr,
  readDuration,
  readEnum,
  readUrl,
  flagsToEnv,
} from "./config.js";
import { readRuntimeConfig } from "./runtime-config.js";

test("durations: 30s, 15m, 12h, 30d and nothing else", (t) => {
  t.is(parseDuration("30s"), 30_000);
  t.is(parseDuration("15m"), 900_000);
  t.is(parseDuration("12h"), 43_200_000);
  t.is(parseDuration("30d"), 2_592_000_000);
  t.is(parseDuration("250ms"), 250);
  for (const bad of ["", "30", "1.5h", "-1s", "3 d", "1w", "99999999999999999d"])
    t.is(parseDuration(bad), undefined, bad);
});

test("a bad value names the variable, the value and what is expected", (t) => {
  const err = t.throws(
    () => readDuration({ AIRLOCK_TOKEN_TTL: "soon" }, "AIRLOCK_TOKEN_TTL", "90d"),
    {
      instanceOf: ConfigError,
    },
  );
  t.is(err?.message, 'AIRLOCK_TOKEN_TTL="soon": expected a duration like 30s, 15m, 12h or 30d');
  t.throws(() => readDuration({ X: "1s" }, "X", "1m", { min: 60_000 }), {
    message: /X="1s".*at least 60000ms/,
  });
  t.throws(() => readAddr({ A: "localhost" }, "A", "127.0.0.1:1"), {
    message: 'A="localhost": expected host:port, e.g. 127.0.0.1:4001',
  });
  t.throws(() => readEnum({ M: "loose" }, "M", ["strict", "best-effort"], "strict"), {
    message: 'M="loose": expected one of strict, best-effort',
  });
});

test("addresses: IPv4, names and bracketed IPv6", (t) => {
  t.deepEqual(readAddr({}, "A", "127.0.0.1:4001"), { host: "127.0.0.1", port: 4001 });
  t.deepEqual(readAddr({ A: "[::1]:0" }, "A", "x:1"), { host: "::1", port: 0 });
  t.throws(() => readAddr({ A: "h:70000" }, "A", "x:1"));
});

test("a URL in an error never shows its password", (t) => {
  t.throws(
    () => readUrl({ DATABASE_URL: "mysql://u:hunter2@db/x" }, "DATABASE_URL", ["postgres:"]),
    {
      message: /mysql:\/\/u:\*\*\*@db\/x/,
    },
  );
  const err = t.throws(() =>
    readUrl({ DATABASE_URL: "mysql://u:hunter2@db/x" }, "DATABASE_URL", ["postgres:"]),
  );
  t.false(err?.message.includes("hunter2"));
});

test("split mode needs DATABASE_URL, REDIS_URL and AIRLOCK_SERVICE_SECRET", (t) => {
  t.throws(() => readRuntimeConfig({}, true), {
    message:
      "DATABASE_URL, REDIS_URL, AIRLOCK_SERVICE_SECRET must be set when serving services in separate processes",
  });
  t.notThrows(() => readRuntimeConfig({}, false));
});

test("a short service secret is refused", (t) => {
  t.throws(() => readRuntimeConfig({ AIRLOCK_SERVICE_SECRET: "short" }, false), {
    message: /at least 32 characters/,
  });
});

test("flags mirror environment names", (t) => {
  t.deepEqual(
    flagsToEnv({
      "rpc-addr": "0.0.0.0:4001",
      "database-url": "postgres://x",
      "redis-url": undefined,
    }),
    {
      AIRLOCK_RPC_ADDR: "0.0.0.0:4001",
      DATABASE_URL: "postgres://x",
    },
  );
});
