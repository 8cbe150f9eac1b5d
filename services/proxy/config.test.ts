import test from "ava";
import { ConfigError } from "../kit/config.js";
import { readProxyConfig } from "./config.js";

test("the audit path's defaults: strict, spool in the data directory, interval sync every 5 ms, 8 MiB segments, 1 GiB", (t) => {
  const config = readProxyConfig({});
  t.is(config.auditMode, "strict");
  t.deepEqual(config.spool, {
    dir: undefined,
    sync: "interval",
    syncIntervalMs: 5,
    segmentBytes: 8 * 1024 * 1024,
    maxBytes: 1024 * 1024 * 1024,
  });
});

test("the audit path's settings are read from the environment", (t) => {
  const config = readProxyConfig({
    AIRLOCK_AUDIT_MODE: "best-effort",
    AIRLOCK_SPOOL_DIR: "/var/lib/airlock/spool",
    AIRLOCK_SPOOL_SYNC: "always",
    AIRLOCK_SPOOL_SYNC_INTERVAL: "20ms",
    AIRLOCK_SPOOL_SEGMENT_BYTES: "65536",
    AIRLOCK_SPOOL_MAX_BYTES: "1048576",
  });
  t.is(config.auditMode, "best-effort");
  t.deepEqual(config.spool, {
    dir: "/var/lib/airlock/spool",
    sync: "always",
    syncIntervalMs: 20,
    segmentBytes: 65536,
    maxBytes: 1048576,
  });
});

test("a bad audit setting stops start-up naming the variable", (t) => {
  for (const [name, value] of [
    ["AIRLOCK_AUDIT_MODE", "lenient"],
    ["AIRLOCK_SPOOL_SYNC", "never"],
    ["AIRLOCK_SPOOL_SYNC_INTERVAL", "0ms"],
    ["AIRLOCK_SPOOL_SEGMENT_BYTES", "10"],
    ["AIRLOCK_SPOOL_MAX_BYTES", "lots"],
  ]) {
    const err = t.throws(() => readProxyConfig({ [name!]: value }), { instanceOf: ConfigError });
    t.true(err.message.startsWith(`${name}="${value}"`), err.message);
  }
});
