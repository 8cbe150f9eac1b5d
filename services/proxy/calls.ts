/**
 * What a call to the LLM API is, apart from how the proxy handles it: the
 * endpoints, the request as read and validated, who made it, and the errors
 * and headers it is answered with.
 */
import { hash } from "node:crypto";
import type { AuthenticateResponse } from "../../gen/airlock/identity/v1/identity_pb.js";
import { PrincipalKind } from "../../gen/airlock/identity/v1/identity_pb.js";
import type { HttpRequest, HttpResponse } from "../kit/http-listener.js";
import { uuidv7 } from "../kit/ids.js";
import type { Endpoint } from "./collect.js";
import { providerError, type ProviderError } from "./provider-errors.js";
import type { CallContext } from "./records.js";
import type { Api, ModelRoute } from "./routing.js";
import { UpstreamStatusError } from "./upstream.js";

export interface EndpointSpec {
  api: Api;
  endpoint: Endpoint;
  method: "GET" | "POST";
  /** Relative to the provider's base URL as its SDK takes it. */
  upstreamPath: string;
}

export const endpoints: Record<string, EndpointSpec> = {
  "/openai/v1/chat/completions": {
    api: "openai",
    endpoint: "chat",
    method: "POST",
    upstreamPath: "chat/completions",
  },
  "/openai/v1/responses": {
    api: "openai",
    endpoint: "responses",
    method: "POST",
    upstreamPath: "responses",
  },
  "/openai/v1/models": { api: "openai", endpoint: "models", method: "GET", upstreamPath: "models" },
  "/anthropic/v1/messages": {
    api: "anthropic",
    endpoint: "messages",
    method: "POST",
    upstreamPath: "v1/messages",
  },
  "/anthropic/v1/messages/count_tokens": {
    api: "anthropic",
    endpoint: "count_tokens",
    method: "POST",
    upstreamPath: "v1/messages/count_tokens",
  },
  "/anthropic/v1/models": {
    api: "anthropic",
    endpoint: "models",
    method: "GET",
    upstreamPath: "v1/models",
  },
};

/** Client headers a provider needs, passed on as they are. The caller's credential never is. */
export const forwardedRequestHeaders = [
  "anthropic-version",
  "anthropic-beta",
  "openai-beta",
  "user-agent",
  "accept",
];
/** Upstream headers the client may see. */
export const forwardedResponseHeader =
  /^(content-type|request-id|x-request-id|openai-processing-ms|openai-version|retry-after|x-ratelimit-.*|anthropic-ratelimit-.*)$/;
const sessionHeader = /^[A-Za-z0-9._:-]{1,128}$/;
export const policyName = /^[A-Za-z0-9._\-/@:+]{1,300}$/;

/** Refusal before anything went upstream. */
export class Refusal extends Error {
  constructor(readonly error: ProviderError) {
    super(error.body);
  }
}

export function callContext(
  spec: EndpointSpec,
  req: HttpRequest,
  who: AuthenticateResponse,
  route: ModelRoute,
  body: Record<string, unknown>,
): CallContext {
  const principal = who.principal!;
  const scoped = (prefix: string) =>
    who.scopes.filter((s) => s.startsWith(prefix)).map((s) => s.slice(prefix.length));
  const session = req.headers["x-airlock-session"];
  return {
    id: uuidv7(),
    sessionId:
      typeof session === "string" && sessionHeader.test(session)
        ? session
        : deriveSession(principal.id, spec.api, body),
    orgId: principal.org!.id,
    principalId: principal.id,
    principalKind: PrincipalKind[principal.kind].toLowerCase(),
    workspace: scoped("workspace:")[0] ?? principal.workspace,
    repositories: scoped("repo:").length ? scoped("repo:") : principal.repositories,
    userAgent: String(req.headers["user-agent"] ?? ""),
    api: spec.api,
    endpoint: spec.endpoint,
    provider: route.targets[0]!.provider.name,
    model: route.model,
    stream: body.stream === true,
  };
}

/** Roles that carry instructions rather than a turn of the conversation (Chat Completions, Responses). */
const instructionRoles = new Set(["system", "developer"]);

/**
 * A conversation resends its beginning with every turn, so the same
 * principal, instructions and first turn name the same session. The first
 * turn is the first message that is not instructions: an agent sends the
 * same system prompt at the start of all its conversations, so that alone
 * would put them all in one session.
 */
function deriveSession(principalId: string, api: string, body: Record<string, unknown>): string {
  const items: unknown[] = Array.isArray(body.messages)
    ? body.messages
    : Array.isArray(body.input)
      ? body.input
      : [body.input];
  const firstTurn = items.findIndex(
    (m) =>
      !(
        m &&
        typeof m === "object" &&
        instructionRoles.has((m as { role?: unknown }).role as string)
      ),
  );
  const instructions = firstTurn === -1 ? items : items.slice(0, firstTurn);
  // One-shot: cheaper than createHash for an input this small, hashed on every call.
  const digest = hash(
    "sha256",
    `${principalId}\n${api}\n${JSON.stringify(body.system ?? body.instructions ?? "")}\n${JSON.stringify(instructions)}\n${JSON.stringify(items[firstTurn] ?? "")}`,
    "hex",
  );
  return `s_${digest.slice(0, 24)}`;
}

export function upstreamHeaders(
  api: Api,
  apiKey: string | undefined,
  forwarded: Record<string, string>,
): Record<string, string> {
  // Not `{ ...forwarded, … }`: properties added to a spread object are slow in V8 (see contextFields).
  const headers: Record<string, string> = Object.assign({}, forwarded, {
    "content-type": "application/json",
  });
  if (apiKey) {
    if (api === "anthropic") headers["x-api-key"] = apiKey;
    else headers.authorization = `Bearer ${apiKey}`;
  }
  if (api === "anthropic") headers["anthropic-version"] ??= "2023-06-01";
  return headers;
}

export async function readJson(
  api: Api,
  req: HttpRequest,
  limit: number,
): Promise<{ raw: Buffer; text: string; json: Record<string, unknown> }> {
  const type = String(req.headers["content-type"] ?? "");
  if (!type.toLowerCase().startsWith("application/json")) {
    throw new Refusal(providerError(api, 415, "send the request body as application/json"));
  }
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit)
    throw new Refusal(providerError(api, 413, `the request body is larger than ${limit} bytes`));
  // Events rather than an async iterator: this runs on every call, and the iterator costs more.
  const chunks = await new Promise<Buffer[]>((resolve, reject) => {
    const received: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        reject(
          new Refusal(providerError(api, 413, `the request body is larger than ${limit} bytes`)),
        );
      } else received.push(chunk);
    });
    req.once("end", () => resolve(received));
    req.once("error", reject);
  });
  const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  const text = raw.toString("utf8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Refusal(providerError(api, 400, "the request body is not valid JSON"));
  }
  if (!json || typeof json !== "object" || Array.isArray(json))
    throw new Refusal(providerError(api, 400, "the request body must be a JSON object"));
  return { raw, text, json: json as Record<string, unknown> };
}

export function respond(res: HttpResponse, error: ProviderError): void {
  if (res.headersSent) return void res.end();
  res.statusCode = error.status;
  res.setHeader("content-type", "application/json");
  res.end(error.body);
}

export function backoff(retry: number): number {
  return Math.round(100 * 2 ** retry * (0.5 + Math.random()));
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });
}

export function describe(err: unknown): string {
  if (err instanceof UpstreamStatusError) return `upstream answered ${err.status}`;
  const e = err as { code?: string; message?: string };
  return [e.code, e.message].filter(Boolean).join(": ") || String(err);
}
