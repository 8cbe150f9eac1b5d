import type { Logger } from "../kit/log.js";
import type { SharedCache } from "../kit/shared-cache.js";

/** Audit publishes `<chain id> …` here after each stored batch, for tails on other replicas. */
export const auditAppendedChannel = "airlock:audit:appended";

/**
 * Wakes whoever follows a chain (Tail streams, SIEM exporters) when records
 * are stored, by this replica or, through the shared cache, by another.
 * Followers also poll, so a lost message only delays them.
 */
export class AppendNotifier {
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly listeners = new Set<(chains: readonly string[]) => void>();
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(
    private readonly cache: SharedCache,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.cache.subscribe(auditAppendedChannel, (message) =>
      this.wake(message.split(" ")),
    );
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.();
    for (const set of this.waiters.values()) for (const wake of set) wake();
  }

  /** Called after a batch committed. */
  appended(chains: readonly string[]): void {
    this.wake(chains);
    this.cache
      .publish(auditAppendedChannel, chains.join(" "))
      .catch((err: unknown) =>
        this.log.warn({ err }, "audit append notice not published; other replicas will poll"),
      );
  }

  /** Runs `listener` after every stored batch, with the chains it touched. */
  onAppend(listener: (chains: readonly string[]) => void): void {
    this.listeners.add(listener);
  }

  /** Resolves when `chainId` may have moved, after `ms`, or when `signal` aborts. */
  wait(chainId: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const set = this.waiters.get(chainId) ?? new Set();
      this.waiters.set(chainId, set);
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        set.delete(done);
        if (set.size === 0) this.waiters.delete(chainId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done);
      set.add(done);
    });
  }

  private wake(chains: readonly string[]): void {
    for (const chain of chains) for (const wake of this.waiters.get(chain) ?? []) wake();
    for (const listener of this.listeners) listener(chains);
  }
}
