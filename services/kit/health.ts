import type { ServiceImpl } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as Status,
} from "../../gen/grpc/health/v1/health_pb.js";
import { notFound } from "./errors.js";

/**
 * Serving status for `grpc.health.v1.Health`. The empty service name stands
 * for the whole server; each registered service has its own entry. Watchers
 * are told of every change.
 */
export class HealthStatus {
  private readonly statuses = new Map<string, Status>();
  private readonly watchers = new Set<() => void>();

  constructor(services: readonly string[]) {
    for (const name of ["", ...services]) this.statuses.set(name, Status.NOT_SERVING);
  }

  set(serving: boolean): void {
    for (const name of this.statuses.keys()) {
      this.statuses.set(name, serving ? Status.SERVING : Status.NOT_SERVING);
    }
    for (const wake of this.watchers) wake();
  }

  get(service: string): Status | undefined {
    return this.statuses.get(service);
  }

  /** Resolves at the next change, or when `signal` aborts. */
  changed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.watchers.delete(wake);
        signal.removeEventListener("abort", wake);
        resolve();
      };
      this.watchers.add(wake);
      signal.addEventListener("abort", wake);
    });
  }
}

export function healthService(status: HealthStatus): ServiceImpl<typeof Health> {
  return {
    check(req) {
      const current = status.get(req.service);
      if (current === undefined) throw notFound(`unknown service ${req.service}`);
      return { status: current };
    },
    async *watch(req, ctx) {
      let last: Status | undefined;
      while (!ctx.signal.aborted) {
        const current = status.get(req.service) ?? Status.SERVICE_UNKNOWN;
        if (current !== last) yield { status: current };
        last = current;
        await status.changed(ctx.signal);
      }
    },
  };
}
