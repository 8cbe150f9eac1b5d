import test from "ava";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readExportConfig } from "./config.js";

test("no sinks: export is off", (t) => {
  t.deepEqual(readExportConfig({}).sinks, []);
});

test("every sink type is read from one list, with its own settings and defaults", (t) => {
  const config = readExportConfig({
    AIRLOCK_AUDIT_SINKS:
      "stdout, file:/var/log/airlock/audit.jsonl, splunk:https://splunk:8088, webhook:https://siem.example/in, syslog:tcp://[::1]",
    AIRLOCK_AUDIT_SPLUNK_TOKEN: "hec-token",
    AIRLOCK_AUDIT_WEBHOOK_SECRET: "hook-secret",
    AIRLOCK_AUDIT_WEBHOOK_SECRET_HEADER: "X-Airlock-Secret",
    AIRLOCK_AUDIT_EXPORT_CONTENT: "file",
  });
  t.deepEqual(
    config.sinks.map((s) => [s.name, s.includeContent]),
    [
      ["stdout", false],
      ["file", true],
      ["splunk", false],
      ["webhook", false],
      ["syslog", false],
    ],
  );
  const [, file, splunk, webhook, syslog] = config.sinks;
  t.like(file, { type: "file", path: "/var/log/airlock/audit.jsonl" });
  t.like(splunk, { type: "splunk", token: "hec-token", index: undefined });
  t.is(
    splunk?.type === "splunk" && splunk.url.href,
    "https://splunk:8088/services/collector/event",
  );
  t.like(webhook, { type: "webhook", secret: "hook-secret", secretHeader: "x-airlock-secret" });
  t.like(syslog, { type: "syslog", host: "::1", port: 514, facility: 13 });
  t.like(config, {
    start: "oldest",
    batchSize: 500,
    intervalMs: 2000,
    retryMaxMs: 60_000,
    timeoutMs: 30_000,
  });
});

test("secrets can come from files, for mounted secrets, but not from both places", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "airlock-export-config-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "token"), "hec-from-file\n");
  await writeFile(join(dir, "empty"), "\n");
  const splunk = { AIRLOCK_AUDIT_SINKS: "splunk:https://splunk:8088/services/collector/event" };
  const config = readExportConfig({
    ...splunk,
    AIRLOCK_AUDIT_SPLUNK_TOKEN_FILE: join(dir, "token"),
  });
  t.like(config.sinks[0], { token: "hec-from-file" });
  t.throws(
    () =>
      readExportConfig({
        ...splunk,
        AIRLOCK_AUDIT_SPLUNK_TOKEN: "a",
        AIRLOCK_AUDIT_SPLUNK_TOKEN_FILE: join(dir, "token"),
      }),
    {
      message:
        "AIRLOCK_AUDIT_SPLUNK_TOKEN and AIRLOCK_AUDIT_SPLUNK_TOKEN_FILE are both set: expected one of them",
    },
  );
  t.throws(
    () => readExportConfig({ ...splunk, AIRLOCK_AUDIT_SPLUNK_TOKEN_FILE: join(dir, "missing") }),
    {
      message: /^AIRLOCK_AUDIT_SPLUNK_TOKEN_FILE=".*missing": expected a readable file \(ENOENT\)$/,
    },
  );
  t.throws(
    () => readExportConfig({ ...splunk, AIRLOCK_AUDIT_SPLUNK_TOKEN_FILE: join(dir, "empty") }),
    { message: /expected a file holding the secret/ },
  );
  t.throws(() => readExportConfig(splunk), {
    message:
      "AIRLOCK_AUDIT_SPLUNK_TOKEN (or AIRLOCK_AUDIT_SPLUNK_TOKEN_FILE) is not set: the splunk sink needs an HEC token",
  });
});

test("a bad entry stops start-up with one line naming it and what is expected, secrets hidden", (t) => {
  const bad = (sinks: string, extra: Record<string, string> = {}) =>
    t.throws(() => readExportConfig({ AIRLOCK_AUDIT_SINKS: sinks, ...extra }))?.message;
  t.is(
    bad("kafka:broker:9092"),
    'AIRLOCK_AUDIT_SINKS entry "kafka:broker:9092": expected stdout, file:<path>, splunk:<http(s) URL>, webhook:<http(s) URL> or syslog:tcp://<host>:<port>',
  );
  t.is(
    bad("webhook:ftp://user:pw@siem/in?token=abc"),
    'AIRLOCK_AUDIT_SINKS entry "webhook:ftp://user:***@siem/in?***": expected an http(s) URL after the sink type',
  );
  t.is(
    bad("syslog:udp://siem:514"),
    'AIRLOCK_AUDIT_SINKS entry "syslog:udp://siem:514": expected syslog:tcp://<host>:<port>',
  );
  t.is(bad("file:"), 'AIRLOCK_AUDIT_SINKS entry "file:": expected file:<path>');
  t.is(
    bad("stdout,stdout"),
    "AIRLOCK_AUDIT_SINKS names stdout twice: expected each sink type once",
  );
  t.is(
    bad("stdout", { AIRLOCK_AUDIT_EXPORT_CONTENT: "file" }),
    'AIRLOCK_AUDIT_EXPORT_CONTENT names "file": expected sinks named in AIRLOCK_AUDIT_SINKS (stdout)',
  );
  t.regex(bad("stdout", { AIRLOCK_AUDIT_EXPORT_BATCH: "0" })!, /^AIRLOCK_AUDIT_EXPORT_BATCH="0"/);
  t.regex(
    bad("webhook:https://siem/in", { AIRLOCK_AUDIT_WEBHOOK_SECRET_HEADER: "X Secret" })!,
    /^AIRLOCK_AUDIT_WEBHOOK_SECRET_HEADER="X Secret": expected an HTTP header name$/,
  );
});
