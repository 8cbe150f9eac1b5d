import test from "ava";
import { Registry } from "prom-client";
import { requestRecord, responseRecord } from "../../test/support/llm-records.js";
import { LogCapture } from "../../test/support/log-capture.js";
import { createLogger } from "../kit/log.js";
import { AuditModeRecorder, type AuditMode } from "./audit-mode.js";
import type { Recorder } from "./records.js";
import { SpoolFullError } from "./spool.js";

const full: Recorder = {
  record: () => Promise.reject(new SpoolFullError("the spool holds 2048 bytes, its limit")),
  close: () => Promise.resolve(),
};

function setup(mode: AuditMode) {
  const registry = new Registry();
  const logs = new LogCapture();
  const recorder = new AuditModeRecorder({
    recorder: full,
    mode,
    log: createLogger({ service: "test", destination: logs }),
    registry,
  });
  const dropped = async () =>
    (await registry.getSingleMetric("airlock_audit_records_dropped_total")!.get()).values;
  return { recorder, logs, dropped };
}

test("strict: a request record that cannot be written refuses the call; nothing is counted as lost", async (t) => {
  const { recorder, dropped } = setup("strict");
  await t.throwsAsync(recorder.record(requestRecord("a")), { instanceOf: SpoolFullError });
  t.deepEqual(await dropped(), []);
});

test("strict: a lost response record is counted and logged without its content", async (t) => {
  const { recorder, logs, dropped } = setup("strict");
  await recorder.record(responseRecord("a"));
  t.like(await dropped(), [{ labels: { kind: "llm.response" }, value: 1 }]);
  t.regex(logs.text, /audit record lost/);
  t.regex(logs.text, /"id":"a"/);
  t.notRegex(logs.text, /Hi\./);
});

test("best-effort: the call goes on; the lost request record is counted and logged without its prompt", async (t) => {
  const { recorder, logs, dropped } = setup("best-effort");
  await recorder.record(requestRecord("b", "the secret plan"));
  t.like(await dropped(), [{ labels: { kind: "llm.request" }, value: 1 }]);
  t.regex(logs.text, /"kind":"llm.request"/);
  t.notRegex(logs.text, /secret plan/);
});
