import { createHash, randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import type { AuthenticateResponse } from "../../gen/airlock/identity/v1/identity_pb.js";
import type { CheckResponse } from "../../gen/airlock/policy/v1/policy_pb.js";
import { PrincipalKind } from "../../gen/airlock/identity/v1/identity_pb.js";
import { DomainError } from "../kit/errors.js";
import type { HttpRequest, HttpResponse } from "../kit/http-listener.js";
import type { Logger } from "../kit/log.js";
import { collectorFor, type Collected, type Endpoint } from "./collect.js";
import type { ProxyConfig } from "./config.js";
import { providerError, streamErrorEvent, type ProviderError } from "./provider-errors.js";
import type { CallContext, LlmResponseRecord, Recorder } from "./records.js";
import type { Api, ModelRoute, Routing } from "./routing.js";
import { SseParser } from "./sse.js";
import { offeredTools, withoutTools } from "./tools.js";
import { UpstreamStatusError, type Upstream } from "./upstream.js";

interface EndpointSpec {
  api: Api;
  endpoint: Endpoint;
  method: "GET" | "POST";
  /** Relative to the provider's base URL as its SDK takes it. */
  upstreamPath: string;
}

const endpoints: Record<string, EndpointSpec> = {
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
const forwardedRequestHeaders = [
  "anthropic-version",
  "anthropic-beta",
  "openai-beta",
  "user-agent",
  "accept",
];
/** Upstream headers the client may see. */
const forwardedResponseHeader =
  /^(content-type|request-id|x-request-id|openai-processing-ms|openai-version|retry-after|x-ratelimit-.*|anthropic-ratelimit-.*)$/;
const sessionHeader = /^[A-Za-z0-9._:-]{1,128}$/;
const policyName = /^[A-Za-z0-9._\-/@:+]{1,300}$/;

export interface LlmProxyDeps {
  config: ProxyConfig;
  routing: Routing;
  upstreams: ReadonlyMap<string, Upstream>;
  authenticate: (token: string) => Promise<AuthenticateResponse>;
  check: (request: {
    subject: string;
    orgId: string;
    object: string;
    action: string;
  }) => Promise<CheckResponse>;
  recorder: Recorder;
  log: Logger;
  onCall?: (api: string, endpoint: string, status: LlmResponseRecord["status"]) => void;
}

/** Refusal before anything went upstream. */
class Refusal extends Error {
  constructor(readonly error: ProviderError) {
    super(error.body);
  }
}

/**
 * The LLM API: the providers' own HTTP endpoints under `/openai` and
 * `/anthropic`. Each call is authenticated, checked against policy, recorded
 * before it leaves, forwarded through the provider's breaker with retries
 * and fallbacks (only until the first byte reaches the client), streamed
 * back byte for byte, and recorded again when it ends.
 */
export class LlmProxy {
  constructor(private readonly deps: LlmProxyDeps) {}

  handle = (req: HttpRequest, res: HttpResponse): void => {
    const started = performance.now();
    const path = (req.url ?? "/").split("?")[0]!;
    const spec = endpoints[path];
    const api: Api = path.startsWith("/anthropic/") ? "anthropic" : "openai";
    if (!spec || spec.method !== req.method) {
      const known = spec ? `${req.method} is not allowed on ${path}` : `unknown path ${path}`;
      return void respond(
        res,
        providerError(
          api,
          spec ? 405 : 404,
          `${known}: Airlock serves ${Object.keys(endpoints)
            .filter((p) => p.startsWith(`/${api}/`))
            .join(", ")}`,
        ),
      );
    }
    this.serve(spec, req, res, started).catch((err: unknown) => {
      if (err instanceof Refusal) return respond(res, err.error);
      this.deps.log.error({ err: (err as Error).message, path }, "proxy call failed");
      respond(res, providerError(spec.api, 500, "internal error in the Airlock proxy"));
    });
  };

  private async serve(
    spec: EndpointSpec,
    req: HttpRequest,
    res: HttpResponse,
    started: number,
  ): Promise<void> {
    const who = await this.authenticate(spec.api, req);
    if (spec.endpoint === "models") return this.models(spec, who, res);
    const body = await readJson(spec.api, req, this.deps.config.maxBodyBytes);
    const model = body.json.model;
    if (typeof model !== "string" || model === "")
      throw new Refusal(providerError(spec.api, 400, "model: required"));
    const route = this.deps.routing.resolve(spec.api, model);
    if (!route)
      throw new Refusal(
        providerError(
          spec.api,
          404,
          `the model ${model} does not exist or is not routed by Airlock`,
          "model_not_found",
        ),
      );
    const principal = who.principal!;
    const context = callContext(spec, req, who, route, body.json);
    const decision = await this.decide(
      principal.id,
      context.orgId,
      `model:${route.targets[0]!.provider.name}/${model}`,
      "invoke",
      spec.api,
    );
    const offered = offeredTools(spec.endpoint, body.json);
    const removed = new Set<string>();
    await Promise.all(
      offered.map(async (name) => {
        if (
          !policyName.test(name) ||
          !(await this.decide(principal.id, context.orgId, `tool:${name}`, "use", spec.api)).allowed
        )
          removed.add(name);
      }),
    );
    const json = removed.size ? withoutTools(spec.endpoint, body.json, removed) : body.json;
    await this.deps.recorder
      .record({
        ...context,
        kind: "llm.request",
        time: new Date().toISOString(),
        removedTools: [...removed],
        content: { body: json },
      })
      .catch((err: unknown) => {
        this.deps.log.error(
          { err: (err as Error).message },
          "request record could not be written; refusing the call",
        );
        throw new Refusal(
          providerError(
            spec.api,
            503,
            "Airlock cannot record this call right now, so it is refused",
          ),
        );
      });
    if (!decision.allowed) {
      const message = `Airlock policy does not let ${principal.id} invoke model:${route.targets[0]!.provider.name}/${model} (${decision.reason})`;
      await this.finish(context, started, { status: "denied", httpStatus: 403, error: message });
      throw new Refusal(providerError(spec.api, 403, message));
    }
    await this.forward(
      spec,
      context,
      route,
      json,
      removed.size ? undefined : body.raw,
      req,
      res,
      started,
    );
  }

  private async authenticate(api: Api, req: HttpRequest): Promise<AuthenticateResponse> {
    const header = req.headers.authorization;
    const bearer = typeof header === "string" ? /^Bearer\s+(\S+)$/i.exec(header)?.[1] : undefined;
    const apiKey = req.headers["x-api-key"];
    const token = bearer ?? (typeof apiKey === "string" ? apiKey : undefined);
    if (!token)
      throw new Refusal(providerError(api, 401, "missing Airlock token: send it as the API key"));
    let who: AuthenticateResponse;
    try {
      who = await this.deps.authenticate(token);
    } catch (err) {
      if (err instanceof DomainError && err.kind === "unauthenticated")
        throw new Refusal(providerError(api, 401, "invalid Airlock token"));
      throw new Refusal(providerError(api, 503, "Airlock cannot check credentials right now"));
    }
    if (!who.scopes.includes("llm"))
      throw new Refusal(providerError(api, 403, "this Airlock token lacks the llm scope"));
    return who;
  }

  private async decide(
    subject: string,
    orgId: string,
    object: string,
    action: string,
    api: Api,
  ): Promise<CheckResponse> {
    try {
      return await this.deps.check({ subject, orgId, object, action });
    } catch (err) {
      if (ConnectError.from(err).code === Code.InvalidArgument) {
        throw new Refusal(providerError(api, 400, `not a valid name for policy: ${object}`));
      }
      throw new Refusal(providerError(api, 503, "Airlock cannot check policy right now"));
    }
  }

  /** The provider's model list, without the models the caller may not invoke. */
  private async models(
    spec: EndpointSpec,
    who: AuthenticateResponse,
    res: HttpResponse,
  ): Promise<void> {
    const provider = this.deps.routing.providers.find((p) => p.name === spec.api);
    const upstream = provider && this.deps.upstreams.get(provider.name);
    if (!upstream)
      throw new Refusal(providerError(spec.api, 404, `no ${spec.api} provider is configured`));
    let list: { data?: { id?: string }[] };
    try {
      const answer = await upstream.send({
        method: "GET",
        path: spec.upstreamPath,
        headers: upstreamHeaders(spec.api, provider.apiKey, {}),
        body: undefined,
        signal: AbortSignal.timeout(30_000),
      });
      list = (await answer.body.json()) as typeof list;
    } catch (err) {
      throw new Refusal(
        err instanceof UpstreamStatusError
          ? { status: err.status, body: err.body }
          : providerError(spec.api, 502, "the provider did not answer"),
      );
    }
    const orgId = who.principal!.org!.id;
    const visible = await Promise.all(
      (list.data ?? []).map(
        async (m) =>
          policyName.test(m.id ?? "") &&
          (
            await this.decide(
              who.principal!.id,
              orgId,
              `model:${provider.name}/${m.id}`,
              "invoke",
              spec.api,
            )
          ).allowed,
      ),
    );
    respond(res, {
      status: 200,
      body: JSON.stringify({ ...list, data: (list.data ?? []).filter((_, i) => visible[i]) }),
    });
  }

  private async forward(
    spec: EndpointSpec,
    context: CallContext,
    route: ModelRoute,
    json: Record<string, unknown>,
    raw: Buffer | undefined,
    req: HttpRequest,
    res: HttpResponse,
    started: number,
  ): Promise<void> {
    const abort = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) abort.abort();
    });
    const forwarded: Record<string, string> = {};
    for (const name of forwardedRequestHeaders) {
      const value = req.headers[name];
      if (typeof value === "string") forwarded[name] = value;
    }
    let attempts = 0;
    let last: unknown;
    for (const target of route.targets) {
      const upstream = this.deps.upstreams.get(target.provider.name)!;
      // The original bytes go out untouched unless the request had to change.
      const body =
        raw && target.model === context.model
          ? raw
          : JSON.stringify({ ...json, model: target.model });
      for (let retry = 0; retry <= this.deps.config.retries; retry++) {
        attempts++;
        try {
          const answer = await upstream.send({
            method: "POST",
            path: spec.upstreamPath,
            headers: upstreamHeaders(spec.api, target.provider.apiKey, forwarded),
            body,
            signal: abort.signal,
          });
          if (answer.statusCode === 401 || answer.statusCode === 403) {
            // The provider refused Airlock's own key: the caller's token is not at fault, so no 401 for it.
            await answer.body.text().catch(() => "");
            const message = `the provider ${target.provider.name} refused Airlock's API key (${answer.statusCode}); an operator must check its key`;
            await this.finish(context, started, {
              status: "error",
              httpStatus: 502,
              attempts,
              error: message,
            });
            return respond(res, providerError(spec.api, 502, message));
          }
          return await this.relay(
            spec,
            { ...context, provider: target.provider.name },
            target.model,
            attempts,
            answer,
            res,
            started,
            abort.signal,
          );
        } catch (err) {
          if (abort.signal.aborted)
            return this.finish(context, started, {
              status: "aborted",
              httpStatus: 499,
              attempts,
              error: "client went away",
            });
          last = err;
          if ((err as { code?: string }).code === "EOPENBREAKER") break;
          const wait = Math.min(
            err instanceof UpstreamStatusError
              ? (err.retryAfterMs() ?? backoff(retry))
              : backoff(retry),
            Number.MAX_SAFE_INTEGER,
          );
          if (retry === this.deps.config.retries || wait > this.deps.config.maxRetryWaitMs) break;
          await sleep(wait, abort.signal);
        }
      }
    }
    const error: ProviderError =
      last instanceof UpstreamStatusError
        ? {
            status: last.status,
            body:
              last.body ||
              providerError(spec.api, last.status, `upstream answered ${last.status}`).body,
          }
        : (last as { code?: string }).code === "EOPENBREAKER"
          ? providerError(
              spec.api,
              503,
              "every upstream for this model is failing (circuit open); try again later",
            )
          : providerError(spec.api, 502, "the upstream could not be reached");
    await this.finish(context, started, {
      status: "error",
      httpStatus: error.status,
      attempts,
      error: describe(last),
    });
    respond(res, error);
  }

  /** Streams the upstream answer to the client as it arrives, collecting what it says on the way. */
  private async relay(
    spec: EndpointSpec,
    context: CallContext,
    upstreamModel: string,
    attempts: number,
    answer: Awaited<ReturnType<Upstream["send"]>>,
    res: HttpResponse,
    started: number,
    signal: AbortSignal,
  ): Promise<void> {
    const contentType = String(answer.headers["content-type"] ?? "");
    const streaming = contentType.startsWith("text/event-stream");
    const collector = collectorFor(spec.endpoint);
    const parser = streaming ? new SseParser() : undefined;
    const json: Buffer[] = [];
    res.statusCode = answer.statusCode;
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && forwardedResponseHeader.test(name)) res.setHeader(name, value);
    }
    let ttfb = -1;
    // Node sends a response's writes at the end of the tick: what the proxy learns from a chunk is
    // worked out in a later turn of the loop, so that it never holds the chunk back.
    const unparsed: Buffer[] = [];
    let parsing = false;
    const parsePending = () => {
      parsing = false;
      for (const chunk of unparsed.splice(0)) parser!.push(chunk, (e) => collector.event(e));
    };
    try {
      // Each chunk goes to the client as it arrives; the upstream is paused while the client is slow.
      await new Promise<void>((resolve, reject) => {
        const body = answer.body;
        const out = res as ServerResponse;
        body.on("data", (chunk: Buffer) => {
          if (ttfb < 0) ttfb = performance.now() - started;
          if (!out.write(chunk)) {
            body.pause();
            out.once("drain", () => body.resume());
          }
          if (!parser) return void json.push(chunk);
          unparsed.push(chunk);
          if (!parsing) {
            parsing = true;
            setImmediate(parsePending);
          }
        });
        body.once("end", resolve);
        body.once("error", reject);
      });
    } catch (err) {
      if (parser) parsePending();
      if (signal.aborted)
        return this.finish(context, started, {
          status: "aborted",
          httpStatus: answer.statusCode,
          attempts,
          ttfbMs: ttfb,
          upstreamModel,
          collected: collector.result(),
          error: "client went away",
        });
      const message = `the upstream stream failed: ${describe(err)}`;
      if (streaming) res.end(streamErrorEvent(spec.api, spec.endpoint, message));
      else res.destroy();
      return this.finish(context, started, {
        status: "error",
        httpStatus: answer.statusCode,
        attempts,
        ttfbMs: ttfb,
        upstreamModel,
        collected: collector.result(),
        error: message,
      });
    }
    res.end();
    await new Promise((resolve) => setImmediate(resolve));
    if (parser) parsePending();
    else {
      try {
        collector.json(JSON.parse(Buffer.concat(json).toString("utf8")));
      } catch {
        // Not JSON: the bytes went to the client as they were; there is nothing to collect.
      }
    }
    const collected = collector.result();
    const ok = answer.statusCode < 400 && !collected.error;
    await this.finish(context, started, {
      status: ok ? "ok" : "error",
      httpStatus: answer.statusCode,
      attempts,
      ttfbMs: ttfb,
      upstreamModel,
      collected,
      error: collected.error || (ok ? "" : Buffer.concat(json).toString("utf8").slice(0, 2000)),
    });
  }

  private async finish(
    context: CallContext,
    started: number,
    outcome: {
      status: LlmResponseRecord["status"];
      httpStatus: number;
      attempts?: number;
      ttfbMs?: number;
      upstreamModel?: string;
      collected?: Collected;
      error?: string;
    },
  ): Promise<void> {
    const c = outcome.collected;
    this.deps.onCall?.(context.api, context.endpoint, outcome.status);
    await this.deps.recorder
      .record({
        ...context,
        kind: "llm.response",
        time: new Date().toISOString(),
        status: outcome.status,
        httpStatus: outcome.httpStatus,
        upstreamModel: outcome.upstreamModel ?? "",
        attempts: outcome.attempts ?? 0,
        latencyMs: Math.round((performance.now() - started) * 1000) / 1000,
        ttfbMs:
          outcome.ttfbMs === undefined || outcome.ttfbMs < 0
            ? -1
            : Math.round(outcome.ttfbMs * 1000) / 1000,
        stopReason: c?.stopReason ?? "",
        usage: c?.usage ?? {
          inputTokens: 0,
          outputTokens: 0,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
        },
        toolNames: c?.toolCalls.map((t) => t.name) ?? [],
        error: outcome.error ?? "",
        content: {
          text: c?.text ?? "",
          reasoning: c?.reasoning ?? "",
          toolCalls: c?.toolCalls ?? [],
        },
      })
      .catch((err: unknown) =>
        this.deps.log.error(
          { err: (err as Error).message, id: context.id },
          "response record could not be written",
        ),
      );
  }
}

function callContext(
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
    id: randomUUID(),
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

/**
 * A conversation resends its beginning with every turn, so the same
 * principal, system prompt and first message name the same session.
 */
function deriveSession(principalId: string, api: string, body: Record<string, unknown>): string {
  const first = Array.isArray(body.messages)
    ? body.messages[0]
    : Array.isArray(body.input)
      ? body.input[0]
      : body.input;
  const hash = createHash("sha256").update(
    `${principalId}\n${api}\n${JSON.stringify(body.system ?? body.instructions ?? "")}\n${JSON.stringify(first ?? "")}`,
  );
  return `s_${hash.digest("hex").slice(0, 24)}`;
}

function upstreamHeaders(
  api: Api,
  apiKey: string | undefined,
  forwarded: Record<string, string>,
): Record<string, string> {
  const headers: Record<string, string> = { ...forwarded, "content-type": "application/json" };
  if (apiKey) {
    if (api === "anthropic") headers["x-api-key"] = apiKey;
    else headers.authorization = `Bearer ${apiKey}`;
  }
  if (api === "anthropic") headers["anthropic-version"] ??= "2023-06-01";
  return headers;
}

async function readJson(
  api: Api,
  req: HttpRequest,
  limit: number,
): Promise<{ raw: Buffer; json: Record<string, unknown> }> {
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
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new Refusal(providerError(api, 400, "the request body is not valid JSON"));
  }
  if (!json || typeof json !== "object" || Array.isArray(json))
    throw new Refusal(providerError(api, 400, "the request body must be a JSON object"));
  return { raw, json: json as Record<string, unknown> };
}

function respond(res: HttpResponse, error: ProviderError): void {
  if (res.headersSent) return void res.end();
  res.statusCode = error.status;
  res.setHeader("content-type", "application/json");
  res.end(error.body);
}

function backoff(retry: number): number {
  return Math.round(100 * 2 ** retry * (0.5 + Math.random()));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });
}

function describe(err: unknown): string {
  if (err instanceof UpstreamStatusError) return `upstream answered ${err.status}`;
  const e = err as { code?: string; message?: string };
  return [e.code, e.message].filter(Boolean).join(": ") || String(err);
}
