import test from "ava";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AppendRequestSchema, RecordSchema } from "../../gen/airlock/audit/v1/audit_pb.js";
import { appendOf, RecordsWire } from "./audit-record.js";
import type { CallContext, LlmRecord, LlmRequestRecord, LlmResponseRecord } from "./records.js";
import { parseSpoolLine, spoolLine, type SpooledRecord } from "./spool-line.js";

const context: CallContext = {
  id: "0b6f1c8e-4a55-4d0e-9f6e-2a1c3b4d5e6f",
  sessionId: "s_abc",
  orgId: "org_1",
  principalId: "agt_1",
  principalKind: "agent",
  workspace: "web",
  repositories: ["github.com/acme/app"],
  userAgent: "OpenAI/JS 6.0",
  api: "openai",
  endpoint: "chat",
  provider: "openai",
  model: "gpt-4o",
  stream: true,
};

const request: LlmRequestRecord = {
  ...context,
  kind: "llm.request",
  time: "2025-01-02T03:04:05.678Z",
  removedTools: ["delete_repo"],
  toolNames: ["get_weather"],
  content: {
    body: {
      model: "gpt-4o",
      messages: [{ role: "user", content: "hi" }],
      tools: [{ type: "function", function: { name: "get_weather", parameters: {} } }],
    },
  },
};

const response: LlmResponseRecord = {
  ...context,
  kind: "llm.response",
  time: "2025-01-02T03:04:06.000Z",
  status: "ok",
  httpStatus: 200,
  upstreamModel: "gpt-4o-2024-11-20",
  attempts: 2,
  latencyMs: 41.204,
  ttfbMs: 41.2,
  stopReason: "tool_calls",
  usage: {
    inputTokens: 12,
    outputTokens: 7,
    cacheReadTokens: 3,
    cacheWriteTokens: 0,
    reasoningTokens: 1,
  },
  toolNames: ["get_weather"],
  error: "",
  content: {
    text: "Let me look.",
    reasoning: "",
    toolCalls: [{ id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' }],
  },
};

/** What the audit service receives: the record spooled, read back, sent over the wire. */
const sent = (r: LlmRecord) => wire(parseSpoolLine(spoolLine(r).trimEnd()));

/** A record in wire form, its length first. */
const wireOf = (spooled: SpooledRecord) => {
  const records = new RecordsWire();
  records.add(spooled);
  return records.take()[0]!;
};

/** A record in wire form (its length first) read back by the generic decoder. */
const wire = (spooled: SpooledRecord) => {
  const bytes = wireOf(spooled);
  const reader = new BinaryReader(bytes);
  const length = reader.uint32();
  if (reader.pos + length !== bytes.length) throw new Error("the length does not cover the record");
  return fromBinary(RecordSchema, bytes.subarray(reader.pos));
};

/** The content as audit stores it. */
const contentOf = (r: ReturnType<typeof sent>) =>
  JSON.parse(Buffer.from(r.contentJson).toString("utf8")) as unknown;

/** A line as an earlier version spooled it: one JSON object, no tool names on requests. */
const legacy = (r: LlmRecord) => {
  const old: Partial<LlmRecord> = { ...r };
  if (old.kind === "llm.request") delete old.toolNames;
  return wire(parseSpoolLine(JSON.stringify(old)));
};

test("a request record: its own id, who and what, the tools sent upstream, the body as content", (t) => {
  const r = sent(request);
  t.is(r.id, `${context.id}.request`);
  t.is(r.interceptionId, context.id);
  t.is(r.kind, "llm.request");
  t.is(timestampDate(r.time!).toISOString(), request.time);
  t.is(r.orgId, "org_1");
  t.is(r.actor, "agt_1");
  t.is(r.actorKind, "agent");
  t.is(r.action, "invoke");
  t.is(r.status, "");
  t.is(r.sessionId, "s_abc");
  t.is(r.workspace, "web");
  t.deepEqual(r.repositories, ["github.com/acme/app"]);
  t.is(r.userAgent, "OpenAI/JS 6.0");
  t.is(r.provider, "openai");
  t.is(r.model, "gpt-4o");
  t.deepEqual(r.toolNames, ["get_weather"]);
  t.deepEqual(r.attributes, {
    api: "openai",
    endpoint: "chat",
    stream: true,
    removedTools: ["delete_repo"],
  });
  t.deepEqual(contentOf(r), { body: request.content.body });
});

test("a response record: its own id, status, usage, latency, tool calls and the answer as content", (t) => {
  const r = sent(response);
  t.is(r.id, `${context.id}.response`);
  t.is(r.interceptionId, context.id);
  t.not(r.id, sent(request).id);
  t.is(r.kind, "llm.response");
  t.is(r.status, "ok");
  t.deepEqual(r.toolNames, ["get_weather"]);
  t.is(r.usage!.inputTokens, 12n);
  t.is(r.usage!.outputTokens, 7n);
  t.is(r.usage!.cacheReadTokens, 3n);
  t.is(r.usage!.reasoningTokens, 1n);
  t.is(r.latencyMs, 42n, "rounded up, so never below the time to first byte");
  t.deepEqual(r.attributes, {
    api: "openai",
    endpoint: "chat",
    stream: true,
    httpStatus: 200,
    upstreamModel: "gpt-4o-2024-11-20",
    attempts: 2,
    ttfbMs: 41.2,
    stopReason: "tool_calls",
    error: "",
  });
  t.deepEqual(contentOf(r), {
    text: "Let me look.",
    reasoning: "",
    toolCalls: [{ id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' }],
  });
});

test("a line an earlier version spooled ships the same: content kept, tool names from each API's shape", (t) => {
  const r = legacy(request);
  t.deepEqual(r.toolNames, ["get_weather"]);
  t.deepEqual(JSON.parse(Buffer.from(r.contentJson).toString("utf8")), request.content);
  t.deepEqual(legacy(response).toolNames, response.toolNames);
  const anthropic = legacy({
    ...request,
    api: "anthropic",
    endpoint: "messages",
    content: { body: { model: "claude", tools: [{ name: "bash" }, { name: "edit" }] } },
  });
  t.deepEqual(anthropic.toolNames, ["bash", "edit"]);
  const responses = legacy({
    ...request,
    endpoint: "responses",
    content: {
      body: {
        tools: [
          { type: "function", name: "f" },
          { type: "mcp", server_label: "gh" },
        ],
      },
    },
  });
  t.deepEqual(responses.toolNames, ["f", "mcp.gh"]);
  t.deepEqual(legacy({ ...request, content: { body: { model: "gpt-4o" } } }).toolNames, []);
});

test("a response that never reached the client keeps ttfb -1 and its error", (t) => {
  const r = sent({
    ...response,
    status: "error",
    httpStatus: 502,
    ttfbMs: -1,
    error: "the upstream could not be reached",
    toolNames: [],
    content: { text: "", reasoning: "", toolCalls: [] },
  });
  t.is(r.status, "error");
  t.is(r.attributes!.ttfbMs, -1);
  t.is(r.attributes!.httpStatus, 502);
  t.is(r.attributes!.error, "the upstream could not be reached");
  t.deepEqual(contentOf(r), { text: "", reasoning: "", toolCalls: [] });
});

test("written field by field, a record decodes exactly: multi-byte text, zeros, fractions, a time before 1970", (t) => {
  const odd: LlmResponseRecord = {
    ...response,
    time: "1969-12-31T23:59:59.001Z",
    userAgent: "agent/1 (😀 ü \t)",
    repositories: [],
    model: "模型-1",
    attempts: 0,
    latencyMs: 0,
    ttfbMs: 0.25,
    usage: {
      inputTokens: 2 ** 40,
      outputTokens: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
    },
    status: "error",
    error: "upstream said “no” ✗",
    upstreamModel: "",
  };
  const r = sent(odd);
  t.is(timestampDate(r.time!).toISOString(), odd.time);
  t.is(r.userAgent, odd.userAgent);
  t.deepEqual(r.repositories, []);
  t.is(r.model, odd.model);
  t.is(r.latencyMs, 0n);
  t.is(r.usage!.inputTokens, 2n ** 40n);
  t.is(r.usage!.outputTokens, 0n);
  t.like(r.attributes, { attempts: 0, ttfbMs: 0.25, error: odd.error, upstreamModel: "" });
  t.is(r.status, "error");
  // What the generic encoder writes for the decoded record is what was written: no field
  // at its default, each in its place.
  const bytes = wireOf(parseSpoolLine(spoolLine(odd).trimEnd()));
  const reader = new BinaryReader(bytes);
  reader.uint32(); // the length
  t.deepEqual(toBinary(RecordSchema, r), bytes.subarray(reader.pos));
});

test("an Append of records in wire form is an Append with those records", (t) => {
  const batch = new RecordsWire();
  for (const r of [request, response]) batch.add(parseSpoolLine(spoolLine(r).trimEnd()));
  const records = batch.take();
  const decoded = fromBinary(AppendRequestSchema, toBinary(AppendRequestSchema, appendOf(records)));
  t.deepEqual(decoded.records, [sent(request), sent(response)]);
});

test("a record that cannot be written leaves the records around it whole", (t) => {
  const broken = parseSpoolLine(spoolLine(response).trimEnd());
  // A line readable as JSON but not a proxy record (no repositories), as a damaged spool may hold.
  delete (broken.meta as Partial<LlmResponseRecord>).repositories;
  const batch = new RecordsWire();
  batch.add(parseSpoolLine(spoolLine(request).trimEnd()));
  t.throws(() => batch.add(broken));
  batch.add(parseSpoolLine(spoolLine(response).trimEnd()));
  const decoded = fromBinary(
    AppendRequestSchema,
    toBinary(AppendRequestSchema, appendOf(batch.take())),
  );
  t.deepEqual(decoded.records, [sent(request), sent(response)]);
});

test("lengths of one, two and three bytes are written as the generic encoder writes them", (t) => {
  for (const size of [100, 127, 128, 300, 16_383, 16_384, 40_000]) {
    const long: LlmResponseRecord = {
      ...response,
      userAgent: "a".repeat(size),
      model: "ü".repeat(size),
      error: "x".repeat(size),
      content: { text: "é".repeat(size), reasoning: "", toolCalls: [] },
    };
    const bytes = wireOf(parseSpoolLine(spoolLine(long).trimEnd()));
    const reader = new BinaryReader(bytes);
    reader.uint32();
    t.deepEqual(toBinary(RecordSchema, sent(long)), bytes.subarray(reader.pos), `size ${size}`);
  }
});
