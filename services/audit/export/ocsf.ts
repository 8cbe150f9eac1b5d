import type { JsonObject } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Record } from "../../../gen/airlock/audit/v1/audit_pb.js";

/** The OCSF schema version the events follow. */
export const ocsfVersion = "1.8.0";

/** OCSF API Activity `activity_id`: 0 Unknown, 1 Create, 2 Read, 3 Update, 4 Delete, 99 Other. */
export type ActivityId = 0 | 1 | 2 | 3 | 4 | 99;
/** OCSF `severity_id`: 0 Unknown, 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical, 6 Fatal, 99 Other. */
export type SeverityId = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 99;
/** OCSF `status_id`: 0 Unknown, 1 Success, 2 Failure, 99 Other. */
export type StatusId = 0 | 1 | 2 | 99;

/**
 * One audit record as an OCSF 1.8 API Activity event (class 6003) with the
 * `ai_operation` profile. Fields Airlock has no value for are left out.
 */
export interface OcsfEvent {
  category_uid: 6;
  category_name: "Application Activity";
  class_uid: 6003;
  class_name: "API Activity";
  activity_id: ActivityId;
  activity_name: string;
  type_uid: number;
  type_name: string;
  severity_id: SeverityId;
  severity: string;
  status_id: StatusId;
  status: string;
  status_detail?: string;
  /** Milliseconds since the epoch. */
  time: number;
  duration?: number;
  metadata: {
    version: string;
    product: { name: "Airlock"; vendor_name: "Airlock" };
    uid: string;
    log_name: "audit";
    correlation_uid?: string;
    sequence: number;
    profiles: string[];
  };
  actor: { user: { uid: string; type_id: number; type: string; org?: { uid: string } } };
  api: {
    operation: string;
    service: { name: string };
    request?: { uid: string };
    response?: { code?: number; error_message?: string };
  };
  http_request?: { user_agent: string };
  resources?: { uid: string; type: string }[];
  ai_model?: { name: string; ai_provider: string; uid?: string };
  message_context?: {
    uid?: string;
    ai_role_id: number;
    ai_role: string;
    service: { name: string };
    prompt_tokens?: number;
    completion_tokens?: number;
    total_tokens?: number;
  };
  unmapped: Unmapped;
}

/** What OCSF 1.8 has no attribute for, under the names Airlock uses. */
export interface Unmapped {
  kind: string;
  action?: string;
  org_id: string;
  session_id?: string;
  interception_id?: string;
  workspace?: string;
  repositories?: string[];
  tool_names?: string[];
  cache_read_tokens?: number;
  cache_write_tokens?: number;
  reasoning_tokens?: number;
  attributes?: JsonObject;
  content_sha256?: string;
  content_purged?: true;
  content?: JsonObject;
  chain: { id: string; seq: number; prev_hash: string; hash: string };
}

const activityNames: { [id in ActivityId]: string } = {
  0: "Unknown",
  1: "Create",
  2: "Read",
  3: "Update",
  4: "Delete",
  99: "Other",
};

// Kinds whose activity is the same whatever their action says.
const kindActivities: { readonly [kind: string]: ActivityId } = {
  // A model call creates a completion: POST /v1/messages, /v1/chat/completions.
  "llm.request": 1,
  "llm.response": 1,
  "audit.read": 2,
  // A retention run deletes what has expired.
  "retention.run": 4,
};

// The last word of an action ("rules_added" → "added") says what was done.
const verbActivities: { readonly [verb: string]: ActivityId } = {
  created: 1,
  added: 1,
  placed: 1,
  read: 2,
  updated: 3,
  applied: 3,
  linked: 3,
  revoked: 4,
  removed: 4,
  deleted: 4,
  released: 4,
  purged: 4,
};

const severityNames: { [id in SeverityId]: string } = {
  0: "Unknown",
  1: "Informational",
  2: "Low",
  3: "Medium",
  4: "High",
  5: "Critical",
  6: "Fatal",
  99: "Other",
};

const userTypes: { readonly [actorKind: string]: { type_id: number; type: string } } = {
  user: { type_id: 1, type: "User" },
  agent: { type_id: 99, type: "Agent" },
  service_account: { type_id: 4, type: "Service" },
  // Airlock's own services acting on their own behalf.
  service: { type_id: 3, type: "System" },
};

/** The OCSF activity of a record: by its kind, else by the verb of its action, else Other. */
export function activityOf(record: Pick<Record, "kind" | "action">): ActivityId {
  const byKind = kindActivities[record.kind];
  if (byKind !== undefined) return byKind;
  return verbActivities[record.action.split("_").at(-1) ?? ""] ?? 99;
}

/**
 * How much a SIEM should care: refusals and guard findings are Medium, errors,
 * reads of content and changes of policy are Low, the rest Informational.
 */
export function severityOf(record: Pick<Record, "kind" | "action" | "status">): SeverityId {
  if (record.kind === "guard.finding") return 3;
  if (record.status === "denied" || record.action === "refused") return 3;
  if (record.status === "error") return 2;
  if (record.kind === "audit.read" || record.kind === "policy.change") return 2;
  return 1;
}

function statusOf(status: string): { status_id: StatusId; status: string; detail?: string } {
  switch (status) {
    case "":
      return { status_id: 0, status: "Unknown" };
    case "ok":
      return { status_id: 1, status: "Success" };
    case "error":
    case "denied":
    case "aborted":
      return { status_id: 2, status: "Failure", detail: status };
    default:
      return { status_id: 99, status: "Other", detail: status };
  }
}

const isLlm = (kind: string) => kind.startsWith("llm.");
const stringAttribute = (attributes: JsonObject, name: string) => {
  const value = attributes[name];
  return typeof value === "string" && value !== "" ? value : undefined;
};
const text = (s: string) => (s === "" ? undefined : s);
const list = (a: string[]) => (a.length === 0 ? undefined : [...a]);
const positive = (n: bigint) => (n > 0n ? Number(n) : undefined);

/**
 * Maps one audit record to its OCSF event. Content (prompts, responses, tool
 * arguments) goes along only with `includeContent`; the content digest
 * always does, so a SIEM can match an export against the audit log.
 */
export function toOcsf(record: Record, options: { includeContent: boolean }): OcsfEvent {
  const activity = activityOf(record);
  const severity = severityOf(record);
  const status = statusOf(record.status);
  const llm = isLlm(record.kind);
  const user = userTypes[record.actorKind] ?? { type_id: 0, type: "Unknown" };
  const activityName = activity === 99 ? record.action || record.kind : activityNames[activity];
  const attributes = record.attributes ?? {};
  const httpStatus = attributes["httpStatus"];
  const error = stringAttribute(attributes, "error");
  const event: OcsfEvent = {
    category_uid: 6,
    category_name: "Application Activity",
    class_uid: 6003,
    class_name: "API Activity",
    activity_id: activity,
    activity_name: activityName,
    type_uid: 6003 * 100 + activity,
    type_name: `API Activity: ${activityName}`,
    severity_id: severity,
    severity: severityNames[severity],
    status_id: status.status_id,
    status: status.status,
    status_detail: status.detail,
    time: record.time ? timestampDate(record.time).getTime() : 0,
    duration: positive(record.latencyMs),
    metadata: {
      version: ocsfVersion,
      product: { name: "Airlock", vendor_name: "Airlock" },
      uid: record.id,
      log_name: "audit",
      correlation_uid: text(record.interceptionId),
      sequence: Number(record.seq),
      profiles: llm ? ["ai_operation"] : [],
    },
    actor: {
      user: {
        uid: record.actor,
        ...user,
        org: record.orgId ? { uid: record.orgId } : undefined,
      },
    },
    api: {
      operation: llm
        ? (stringAttribute(attributes, "endpoint") ?? (record.action || record.kind))
        : `${record.kind}.${record.action}`,
      service: { name: llm ? record.provider : `airlock.${record.kind.split(".")[0]}` },
      request: record.interceptionId ? { uid: record.interceptionId } : undefined,
      response:
        typeof httpStatus === "number" || error
          ? { code: typeof httpStatus === "number" ? httpStatus : undefined, error_message: error }
          : undefined,
    },
    http_request: record.userAgent ? { user_agent: record.userAgent } : undefined,
    resources: !llm && record.subject ? [{ uid: record.subject, type: record.kind }] : undefined,
    ai_model:
      llm && record.model
        ? {
            name: record.model,
            ai_provider: record.provider,
            // The model that answered, as the provider named it: often a dated version of `model`.
            uid: stringAttribute(attributes, "upstreamModel"),
          }
        : undefined,
    message_context: llm ? messageContext(record) : undefined,
    unmapped: unmapped(record, options.includeContent),
  };
  return event;
}

function messageContext(record: Record): OcsfEvent["message_context"] {
  const usage = record.usage;
  const response = record.kind === "llm.response";
  return {
    uid: text(record.sessionId),
    // The request carries what the caller said; the response what the model said.
    ai_role_id: response ? 2 : 1,
    ai_role: response ? "Assistant" : "User",
    service: { name: record.provider },
    prompt_tokens: usage ? Number(usage.inputTokens) : undefined,
    completion_tokens: usage ? Number(usage.outputTokens) : undefined,
    total_tokens: usage ? Number(usage.inputTokens + usage.outputTokens) : undefined,
  };
}

function unmapped(record: Record, includeContent: boolean): Unmapped {
  const usage = record.usage;
  const attributes = record.attributes ?? {};
  return {
    kind: record.kind,
    action: text(record.action),
    org_id: record.orgId,
    session_id: text(record.sessionId),
    interception_id: text(record.interceptionId),
    workspace: text(record.workspace),
    repositories: list(record.repositories),
    tool_names: list(record.toolNames),
    cache_read_tokens: usage ? Number(usage.cacheReadTokens) : undefined,
    cache_write_tokens: usage ? Number(usage.cacheWriteTokens) : undefined,
    reasoning_tokens: usage ? Number(usage.reasoningTokens) : undefined,
    attributes: Object.keys(attributes).length > 0 ? attributes : undefined,
    content_sha256: text(record.contentSha256),
    content_purged: record.contentPurged ? true : undefined,
    content: includeContent ? record.content : undefined,
    chain: {
      id: record.chainId,
      seq: Number(record.seq),
      prev_hash: record.prevHash,
      hash: record.hash,
    },
  };
}
