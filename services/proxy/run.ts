import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { Counter } from "prom-client";
import { AuditService } from "../../gen/airlock/audit/v1/audit_pb.js";
import { IdentityService } from "../../gen/airlock/identity/v1/identity_pb.js";
import { ProxyService } from "../../gen/airlock/proxy/v1/proxy_pb.js";
import { startDecisionCache } from "../kit/decision-cache.js";
import { listenHttp } from "../kit/http-listener.js";
import { RemoteAuthenticator } from "../kit/remote-authenticator.js";
import type { ServiceDefinition } from "../kit/service-module.js";
import { readProxyConfig } from "./config.js";
import { LlmProxy } from "./llm-proxy.js";
import { proxyService } from "./proxy-service.js";
import { AuditModeRecorder } from "./audit-mode.js";
import { Shipper } from "./shipper.js";
import { Spool } from "./spool.js";
import { breakerMetrics, Upstream } from "./upstream.js";

/** Composes the proxy: the LLM API on its own port, and its Connect service on the RPC port. */
export const proxyDefinition: ServiceDefinition = {
  name: "proxy",
  configure: (env) => {
    const config = readProxyConfig(env);
    return async (platform) => {
      const log = platform.log.child({ component: "proxy" });
      const spoolDir = config.spool.dir ?? join(platform.dataDir, "spool");
      const spool = await Spool.open({ ...config.spool, dir: spoolDir, log });
      // Stops run in reverse: the LLM port closes (its calls write their last records), then the
      // spool writes and syncs what is pending, then the shipper sends what it can in the grace.
      if (platform.hasPeer("audit")) {
        const shipper = new Shipper({
          spool,
          audit: createClient(AuditService, platform.peer("audit")),
          log,
          registry: platform.registry,
          rejectedPath: join(spoolDir, "rejected.jsonl"),
        });
        shipper.start();
        platform.lifecycle.onStop("audit shipper", () => shipper.stop(platform.shutdownGraceMs));
      } else {
        log.warn(
          { spool: spoolDir },
          "AIRLOCK_AUDIT_URL is not set: records are kept in the spool until it is",
        );
      }
      platform.lifecycle.onStop("audit spool", () => spool.close());
      const recorder = new AuditModeRecorder({
        recorder: spool,
        mode: config.auditMode,
        log,
        registry: platform.registry,
      });
      const authenticator = new RemoteAuthenticator(
        createClient(IdentityService, platform.peer("identity")),
        platform.cache,
      );
      await authenticator.start();
      platform.lifecycle.onStop("proxy authenticator", () => authenticator.stop());
      const decisions = await startDecisionCache(platform, "proxy");
      const upstreams = new Map(
        config.routing.providers.map((p) => [p.name, new Upstream(p, config)]),
      );
      platform.lifecycle.onStop("upstream pools", () =>
        Promise.all([...upstreams.values()].map((u) => u.close())).then(() => undefined),
      );
      breakerMetrics(platform.registry, () => upstreams.values());
      const calls = new Counter({
        name: "airlock_proxy_calls_total",
        help: "LLM calls through the proxy, by API, endpoint and outcome",
        labelNames: ["api", "endpoint", "status"],
        registers: [platform.registry],
      });
      // One child per label set, found by a string key: prom-client hashes a labels object on every inc.
      const children = new Map<string, ReturnType<typeof calls.labels>>();
      const callCounter = (api: string, endpoint: string, status: string) => {
        const key = `${api} ${endpoint} ${status}`;
        let child = children.get(key);
        if (!child) children.set(key, (child = calls.labels(api, endpoint, status)));
        return child;
      };
      const check = (request: { subject: string; orgId: string; object: string; action: string }) =>
        decisions.check(request);
      const proxy = new LlmProxy({
        config,
        routing: config.routing,
        upstreams,
        authenticate: (token) => authenticator.authenticate(token),
        check,
        recorder,
        log,
        onCall: (api, endpoint, status) => callCounter(api, endpoint, status).inc(),
      });
      const listener = await listenHttp(config.httpAddr, proxy.handle);
      platform.lifecycle.onStop("llm api", () => listener.close(platform.shutdownGraceMs));
      log.info(
        {
          url: listener.url,
          providers: config.routing.providers.map((p) => `${p.name}=${p.baseUrl.origin}`),
        },
        "llm api listening",
      );
      return {
        name: "proxy",
        serviceNames: [ProxyService.typeName],
        routes: (router) =>
          router.service(ProxyService, proxyService({ routing: config.routing, upstreams, check })),
        publicRpcs: [],
        dependsOn: ["identity", "policy"],
        endpoints: { llm: listener.url },
      };
    };
  },
};
