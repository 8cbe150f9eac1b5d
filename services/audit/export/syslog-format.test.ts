import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import test from "ava";
import { RecordSchema } from "../../../gen/airlock/audit/v1/audit_pb.js";
import { toOcsf } from "./ocsf.js";
import { octetFrame, priority, syslogMessage } from "./syslog-format.js";

const header = { facility: 13, hostname: "gw-1", appName: "airlock", procId: "4242" };

function event(init: { kind: string; status?: string; workspace?: string }) {
  const record = create(RecordSchema, {
    id: "rec-1",
    time: timestampFromDate(new Date("2026-03-20T10:11:12.345Z")),
    orgId: "org-1",
    chainId: "org-1",
    seq: 1n,
    ...init,
  });
  return toOcsf(record, { includeContent: false });
}

test("PRI is facility × 8 plus the syslog severity of the OCSF severity", (t) => {
  t.is(priority(13, 1), 13 * 8 + 6, "Informational → info");
  t.is(priority(13, 2), 13 * 8 + 5, "Low → notice");
  t.is(priority(13, 3), 13 * 8 + 4, "Medium → warning");
  t.is(priority(16, 5), 16 * 8 + 2, "Critical → crit, local0");
  t.is(priority(0, 0), 6, "Unknown → info");
});

test("an RFC 5424 message: header, no structured data, the OCSF JSON as MSG", (t) => {
  const e = event({ kind: "llm.response", status: "denied" });
  const message = syslogMessage(e, header);
  const prefix = "<108>1 2026-03-20T10:11:12.345Z gw-1 airlock 4242 llm.response - ";
  t.true(message.startsWith(prefix), message);
  t.deepEqual(JSON.parse(message.slice(prefix.length)), JSON.parse(JSON.stringify(e)));
});

test("header fields hold no spaces and fit their maximum lengths", (t) => {
  const message = syslogMessage(event({ kind: "x".repeat(40) }), {
    ...header,
    hostname: "my host",
    appName: "",
  });
  t.true(
    message.startsWith(`<110>1 2026-03-20T10:11:12.345Z my-host - 4242 ${"x".repeat(32)} - {`),
  );
});

test("octet counting counts bytes, not characters", (t) => {
  const message = syslogMessage(event({ kind: "llm.request", workspace: "zürich-é" }), header);
  const framed = octetFrame(message);
  const [length, ...rest] = framed.split(" ");
  t.is(rest.join(" "), message);
  t.is(Number(length), Buffer.byteLength(message));
  t.true(Number(length) > message.length, "two characters take two bytes each");
});
