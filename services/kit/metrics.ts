import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { callerKey, describeCaller } from "./caller.js";
import { codeName } from "./errors.js";
import type { Logger } from "./log.js";

/** A registry per server, so tests and all-in-one processes never share counters by accident. */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * The outermost server interceptor: one log line and one metric sample per
 * RPC, with method, code, duration and caller id. Never the messages: they
 * can hold tokens and prompt text.
 */
export function observeInterceptor(registry: Registry, log: Logger): Interceptor {
  const requests = new Counter({
    name: "airlock_rpc_requests_total",
    help: "RPCs handled, by method and result code",
    labelNames: ["method", "code"],
    registers: [registry],
  });
  const duration = new Histogram({
    name: "airlock_rpc_duration_seconds",
    help: "Time to answer an RPC (unary) or to open its stream",
    labelNames: ["method"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return (next) => async (req) => {
    const method = `${req.service.typeName}/${req.method.name}`;
    const started = performance.now();
    let code = "ok";
    try {
      return await next(req);
    } catch (err) {
      code = codeName(ConnectError.from(err).code);
      throw err;
    } finally {
      const ms = performance.now() - started;
      requests.inc({ method, code });
      duration.observe({ method }, ms / 1000);
      log.info(
        {
          rpc: method,
          code,
          ms: Math.round(ms * 100) / 100,
          caller: describeCaller(req.contextValues.get(callerKey)),
        },
        "rpc",
      );
    }
  };
}
