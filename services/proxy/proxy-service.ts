import type { ServiceImpl } from "@connectrpc/connect";
import type { CheckResponse } from "../../gen/airlock/policy/v1/policy_pb.js";
import { BreakerState, ProxyService } from "../../gen/airlock/proxy/v1/proxy_pb.js";
import { callerKey, principalCaller } from "../kit/caller.js";
import { denied } from "../kit/errors.js";
import type { Routing } from "./routing.js";
import type { Upstream } from "./upstream.js";

const states = {
  closed: BreakerState.CLOSED,
  "half-open": BreakerState.HALF_OPEN,
  open: BreakerState.OPEN,
};

/** What the proxy routes, for callers; breaker states, for operators. */
export function proxyService(deps: {
  routing: Routing;
  upstreams: ReadonlyMap<string, Upstream>;
  check: (request: {
    subject: string;
    orgId: string;
    object: string;
    action: string;
  }) => Promise<CheckResponse>;
}): ServiceImpl<typeof ProxyService> {
  return {
    async listRoutes(_req, ctx) {
      const { principal } = principalCaller(ctx);
      const orgId = principal.org!.id;
      const allowed = await Promise.all(
        deps.routing.models.map(
          async (m) =>
            (
              await deps.check({
                subject: principal.id,
                orgId,
                object: `model:${m.targets[0]!.provider.name}/${m.model}`,
                action: "invoke",
              })
            ).allowed,
        ),
      );
      return {
        routes: [
          ...deps.routing.models
            .filter((_, i) => allowed[i])
            .map((m) => ({
              model: m.model,
              api: m.api,
              targets: m.targets.map((t) => `${t.provider.name}/${t.model}`),
            })),
          ...deps.routing.providers
            .filter((p) => p.name === p.api)
            .map((p) => ({ model: "*", api: p.api, targets: [`${p.name}/*`] })),
        ],
      };
    },

    async listBreakers(_req, ctx) {
      const caller = ctx.values.get(callerKey);
      if (caller.kind !== "service") {
        const { principal } = principalCaller(ctx);
        const decision = await deps.check({
          subject: principal.id,
          orgId: principal.org!.id,
          object: "keys",
          action: "read",
        });
        if (!decision.allowed)
          throw denied(`listing breakers needs read on keys (${decision.reason})`);
      }
      return {
        breakers: [...deps.upstreams.values()].map((u) => ({
          provider: u.provider.name,
          state: states[u.state],
          failures: BigInt(u.stats.failures),
          successes: BigInt(u.stats.successes),
          rejected: BigInt(u.stats.rejects),
        })),
      };
    },
  };
}
