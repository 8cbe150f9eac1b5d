import CircuitBreaker from "opossum";
import { Pool, type Dispatcher } from "undici";
import { Gauge, type Registry } from "prom-client";
import type { Provider } from "./routing.js";

/** An upstream answer that counts as a failure for the breaker and may be retried: 429, 5xx, 529. */
export class UpstreamStatusError extends Error {
  override name = "UpstreamStatusError";
  constructor(
    readonly status: number,
    readonly headers: Dispatcher.ResponseData["headers"],
    readonly body: string,
  ) {
    super(`upstream answered ${status}`);
  }

  /** Retry-After in milliseconds (seconds or an HTTP date), if the upstream sent one. */
  retryAfterMs(now = Date.now()): number | undefined {
    const value = this.headers["retry-after"];
    const text = Array.isArray(value) ? value[0] : value;
    if (!text) return undefined;
    if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
    const at = Date.parse(text);
    return Number.isNaN(at) ? undefined : Math.max(0, at - now);
  }
}

const isFailureStatus = (status: number) => status === 429 || status >= 500;

export interface UpstreamRequest {
  method: "GET" | "POST";
  /** Relative to the provider's base URL, e.g. `chat/completions` or `v1/messages`. */
  path: string;
  headers: Record<string, string>;
  body: string | Buffer | undefined;
  signal: AbortSignal;
}

/**
 * One provider: a keep-alive connection pool and a circuit breaker that
 * trips on connect errors, 429, 5xx and 529, so that while a provider is
 * failing, calls go to the fallbacks without waiting on it.
 */
export class Upstream {
  private readonly pool: Pool;
  private readonly breaker: CircuitBreaker<
    [() => Promise<Dispatcher.ResponseData>],
    Dispatcher.ResponseData
  >;
  private readonly basePath: string;

  constructor(
    readonly provider: Provider,
    options: { headersTimeoutMs: number; breakerResetMs: number },
  ) {
    this.pool = new Pool(provider.baseUrl.origin, {
      connections: 256,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: options.headersTimeoutMs,
      // Streams may pause for long while a model thinks; the headers timeout bounds the wait for an answer.
      bodyTimeout: options.headersTimeoutMs,
      connect: { timeout: 10_000 },
    });
    this.basePath = provider.baseUrl.pathname;
    this.breaker = new CircuitBreaker((call: () => Promise<Dispatcher.ResponseData>) => call(), {
      timeout: false,
      resetTimeout: options.breakerResetMs,
      errorThresholdPercentage: 50,
      volumeThreshold: 3,
      rollingCountTimeout: 10_000,
      // A client going away is not the upstream's fault.
      errorFilter: (err: Error) => err.name === "AbortError",
    });
  }

  get state(): "closed" | "half-open" | "open" {
    return this.breaker.opened ? "open" : this.breaker.halfOpen ? "half-open" : "closed";
  }

  get stats(): { failures: number; successes: number; rejects: number } {
    const s = this.breaker.stats;
    return { failures: s.failures, successes: s.successes, rejects: s.rejects };
  }

  /** Sends through the breaker; rejects with UpstreamStatusError for failure statuses, or the network error. */
  send(request: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    return this.breaker.fire(async () => {
      const res = await this.pool.request({
        method: request.method,
        path: this.basePath + request.path,
        headers: request.headers,
        body: request.body,
        signal: request.signal,
      });
      if (isFailureStatus(res.statusCode)) {
        const body = await res.body.text().catch(() => "");
        throw new UpstreamStatusError(res.statusCode, res.headers, body);
      }
      return res;
    });
  }

  async close(): Promise<void> {
    this.breaker.shutdown();
    await this.pool.close();
  }
}

/** `airlock_proxy_breaker_state{provider}`: 0 closed, 1 half-open, 2 open. */
export function breakerMetrics(registry: Registry, upstreams: () => Iterable<Upstream>): void {
  new Gauge({
    name: "airlock_proxy_breaker_state",
    help: "Circuit breaker per upstream provider: 0 closed, 1 half-open, 2 open",
    labelNames: ["provider"],
    registers: [registry],
    collect() {
      for (const u of upstreams())
        this.set(
          { provider: u.provider.name },
          u.state === "closed" ? 0 : u.state === "half-open" ? 1 : 2,
        );
    },
  });
}
