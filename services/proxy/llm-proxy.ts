import { Code, ConnectError } from "@connectrpc/connect";
import type { AuthenticateResponse } from "../../gen/airlock/identity/v1/identity_pb.js";
import type { CheckResponse } from "../../gen/airlock/policy/v1/policy_pb.js";
import { DomainError } from "../kit/errors.js";
import type { HttpRequest, HttpResponse } from "../kit/http-listener.js";
import type { Logger } from "../kit/log.js";
import type { ProxyConfig } from "./config.js";
import { providerError, type ProviderError } from "./provider-errors.js";
import {
  contextFields,
  JsonText,
  type CallContext,
  type LlmResponseRecord,
  type Recorder,
} from "./records.js";
import type { Api, ModelRoute, Routing } from "./routing.js";
import {
  backoff,
  callContext,
  describe,
  endpoints,
  forwardedRequestHeaders,
  policyName,
  readJson,
  Refusal,
  respond,
  sleep,
  upstreamHeaders,
  type EndpointSpec,
} from "./calls.js";
import { responseRecord, type Outcome } from "./outcome.js";
import { relay } from "./relay.js";
import { offeredTools, withoutTools } from "./tools.js";
import { UpstreamStatusError, type Upstream } from "./upstream.js";

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
    const modelObject = `model:${route.targets[0]!.provider.name}/${model}`;
    const decision = await this.decide(
      principal.id,
      context.orgId,
      modelObject,
      "invoke",
      spec.api,
    );
    const offered = offeredTools(spec.endpoint, body.json);
    const removed = new Set<string>();
    // A denied call goes nowhere: its tools need no decisions.
    await Promise.all(
      (decision.allowed ? offered : []).map(async (name) => {
        if (
          !policyName.test(name) ||
          !(await this.decide(principal.id, context.orgId, `tool:${name}`, "use", spec.api)).allowed
        )
          removed.add(name);
      }),
    );
    const json = removed.size ? withoutTools(spec.endpoint, body.json, removed) : body.json;
    await this.deps.recorder
      .record(
        Object.assign(contextFields(context), {
          kind: "llm.request" as const,
          time: new Date().toISOString(),
          removedTools: [...removed],
          toolNames: removed.size ? offered.filter((name) => !removed.has(name)) : offered,
          // The body less the removed tools: when none was removed, the caller's own text.
          content: { body: removed.size ? json : new JsonText(body.text) },
        }),
      )
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
      const message = `Airlock policy does not let ${principal.id} invoke ${modelObject} (${decision.reason})`;
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
          const outcome = await relay(spec, answer, res, started, abort.signal);
          return await this.finish(
            { ...context, provider: target.provider.name },
            started,
            Object.assign(outcome, { attempts, upstreamModel: target.model }),
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

  private async finish(context: CallContext, started: number, outcome: Outcome): Promise<void> {
    this.deps.onCall?.(context.api, context.endpoint, outcome.status);
    await this.deps.recorder
      .record(responseRecord(context, started, outcome))
      .catch((err: unknown) => {
        this.deps.log.error(
          { err: (err as Error).message, id: context.id },
          "response record could not be written",
        );
      });
  }
}
