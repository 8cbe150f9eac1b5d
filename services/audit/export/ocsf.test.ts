import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import test from "ava";
import { RecordSchema } from "../../../gen/airlock/audit/v1/audit_pb.js";
import { activityOf, severityOf, toOcsf, type ActivityId } from "./ocsf.js";

const time = new Date("2026-03-20T10:11:12.345Z");

function record(init: MessageInitShape<typeof RecordSchema>) {
  return create(RecordSchema, {
    id: "rec-1",
    time: timestampFromDate(time),
    orgId: "org-1",
    chainId: "org-1",
    seq: 42n,
    prevHash: "aa",
    hash: "bb",
    ...init,
  });
}

// What a SIEM receives: the event as JSON.
const asJson = (r: ReturnType<typeof record>, includeContent = false) =>
  JSON.parse(JSON.stringify(toOcsf(r, { includeContent })));

const response = record({
  kind: "llm.response",
  action: "invoke",
  actor: "agent-7",
  actorKind: "agent",
  status: "ok",
  sessionId: "sess-1",
  interceptionId: "call-1",
  workspace: "payments",
  repositories: ["acme/api"],
  userAgent: "claude-cli/1.0",
  provider: "anthropic",
  model: "claude-sonnet-4",
  toolNames: ["bash"],
  usage: {
    inputTokens: 1200n,
    outputTokens: 300n,
    cacheReadTokens: 1000n,
    cacheWriteTokens: 5n,
    reasoningTokens: 100n,
  },
  latencyMs: 850n,
  // As the proxy writes them (services/proxy/audit-record.ts).
  attributes: {
    api: "anthropic",
    endpoint: "messages",
    httpStatus: 200,
    upstreamModel: "claude-sonnet-4-20250514",
    stopReason: "end_turn",
    error: "",
  },
  content: { text: "the secret plan" },
  contentSha256: "c0ffee",
});

test("an LLM response becomes an API Activity Create with the ai_operation profile", (t) => {
  t.deepEqual(asJson(response), {
    category_uid: 6,
    category_name: "Application Activity",
    class_uid: 6003,
    class_name: "API Activity",
    activity_id: 1,
    activity_name: "Create",
    type_uid: 600301,
    type_name: "API Activity: Create",
    severity_id: 1,
    severity: "Informational",
    status_id: 1,
    status: "Success",
    time: time.getTime(),
    duration: 850,
    metadata: {
      version: "1.8.0",
      product: { name: "Airlock", vendor_name: "Airlock" },
      uid: "rec-1",
      log_name: "audit",
      correlation_uid: "call-1",
      sequence: 42,
      profiles: ["ai_operation"],
    },
    actor: { user: { uid: "agent-7", type_id: 99, type: "Agent", org: { uid: "org-1" } } },
    api: {
      operation: "messages",
      service: { name: "anthropic" },
      request: { uid: "call-1" },
      response: { code: 200 },
    },
    http_request: { user_agent: "claude-cli/1.0" },
    ai_model: {
      name: "claude-sonnet-4",
      ai_provider: "anthropic",
      uid: "claude-sonnet-4-20250514",
    },
    message_context: {
      uid: "sess-1",
      ai_role_id: 2,
      ai_role: "Assistant",
      service: { name: "anthropic" },
      prompt_tokens: 1200,
      completion_tokens: 300,
      total_tokens: 1500,
    },
    unmapped: {
      kind: "llm.response",
      action: "invoke",
      org_id: "org-1",
      session_id: "sess-1",
      interception_id: "call-1",
      workspace: "payments",
      repositories: ["acme/api"],
      tool_names: ["bash"],
      cache_read_tokens: 1000,
      cache_write_tokens: 5,
      reasoning_tokens: 100,
      // As the proxy writes them (services/proxy/audit-record.ts).
      attributes: {
        api: "anthropic",
        endpoint: "messages",
        httpStatus: 200,
        upstreamModel: "claude-sonnet-4-20250514",
        stopReason: "end_turn",
        error: "",
      },
      content_sha256: "c0ffee",
      chain: { id: "org-1", seq: 42, prev_hash: "aa", hash: "bb" },
    },
  });
});

test("content leaves only when the sink asks for it; its digest always does", (t) => {
  t.is(asJson(response).unmapped.content, undefined);
  t.false(JSON.stringify(toOcsf(response, { includeContent: false })).includes("secret plan"));
  t.deepEqual(asJson(response, true).unmapped.content, { text: "the secret plan" });
  const purged = record({ kind: "llm.request", contentSha256: "c0ffee", contentPurged: true });
  t.like(asJson(purged, true).unmapped, { content_sha256: "c0ffee", content_purged: true });
});

test("an upstream failure carries its HTTP status and error message", (t) => {
  const failed = record({
    kind: "llm.response",
    status: "error",
    attributes: { httpStatus: 502, error: "upstream closed the connection" },
  });
  t.deepEqual(asJson(failed).api.response, {
    code: 502,
    error_message: "upstream closed the connection",
  });
});

test("an LLM request speaks for the user and has no token counts yet", (t) => {
  const event = asJson(record({ kind: "llm.request", provider: "openai", model: "gpt-4o" }));
  t.deepEqual(event.message_context, {
    ai_role_id: 1,
    ai_role: "User",
    service: { name: "openai" },
  });
  t.is(event.status_id, 0, "a request has no outcome yet");
});

test("changes in identity and policy map to CRUD activities on the resource they touched", (t) => {
  const revoked = asJson(
    record({
      kind: "identity.token",
      action: "revoked",
      actor: "user-1",
      actorKind: "user",
      subject: "tok-9",
      status: "ok",
    }),
  );
  t.like(revoked, {
    activity_id: 4,
    type_uid: 600304,
    api: { operation: "identity.token.revoked", service: { name: "airlock.identity" } },
    actor: { user: { uid: "user-1", type_id: 1, type: "User" } },
  });
  t.deepEqual(revoked.resources, [{ uid: "tok-9", type: "identity.token" }]);
  t.deepEqual(revoked.metadata.profiles, []);
  t.is(revoked.ai_model, undefined);
});

test("activities: by kind, else by the action's last word, else Other named after the action", (t) => {
  const cases: [string, string, ActivityId][] = [
    ["llm.request", "", 1],
    ["audit.read", "", 2],
    ["retention.run", "", 4],
    ["identity.principal", "created", 1],
    ["identity.principal", "linked", 3],
    ["policy.change", "rules_added", 1],
    ["policy.change", "rules_removed", 4],
    ["policy.change", "bundle_applied", 3],
    ["retention.hold", "released", 4],
    ["policy.change", "refused", 99],
    ["guard.finding", "", 99],
  ];
  for (const [kind, action, expected] of cases) {
    t.is(activityOf({ kind, action }), expected, `${kind} ${action}`);
  }
  t.like(asJson(record({ kind: "policy.change", action: "refused" })), {
    activity_name: "refused",
    type_name: "API Activity: refused",
    type_uid: 600399,
  });
  t.is(asJson(record({ kind: "guard.finding" })).activity_name, "guard.finding");
});

test("severity and status say what went wrong", (t) => {
  t.is(severityOf({ kind: "guard.finding", action: "", status: "" }), 3);
  t.is(severityOf({ kind: "llm.response", action: "", status: "denied" }), 3);
  t.is(severityOf({ kind: "policy.change", action: "refused", status: "" }), 3);
  t.is(severityOf({ kind: "llm.response", action: "", status: "error" }), 2);
  t.is(severityOf({ kind: "audit.read", action: "read", status: "ok" }), 2);
  t.is(severityOf({ kind: "identity.token", action: "created", status: "ok" }), 1);
  t.like(asJson(record({ kind: "llm.response", status: "denied" })), {
    status_id: 2,
    status: "Failure",
    status_detail: "denied",
    severity: "Medium",
  });
  t.like(asJson(record({ kind: "llm.response", status: "throttled" })), {
    status_id: 99,
    status: "Other",
    status_detail: "throttled",
  });
});

test("an Airlock service acting on its own is a System user; an unknown actor kind is Unknown", (t) => {
  t.like(asJson(record({ actor: "service:retention", actorKind: "service" })).actor.user, {
    type_id: 3,
    type: "System",
  });
  t.like(asJson(record({ actor: "anonymous", actorKind: "" })).actor.user, {
    uid: "anonymous",
    type_id: 0,
    type: "Unknown",
  });
});
