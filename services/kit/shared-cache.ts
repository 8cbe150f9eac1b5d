import { Redis } from "ioredis";

/**
 * What services keep in Redis: short-lived values, tombstones that stop a
 * stale value from being cached again, and pub/sub for invalidations. Backed
 * by Redis, or in all-in-one mode without REDIS_URL by {@link MemoryCache}.
 */
export interface SharedCache {
  get(key: string): Promise<string | null>;
  /**
   * Stores `value` for `ttlMs` unless `tombstoneKey` exists, atomically, so
   * a reader that looked up the database before a revocation cannot cache
   * what was just revoked. Returns whether it stored.
   */
  setUnlessTombstoned(
    key: string,
    value: string,
    ttlMs: number,
    tombstoneKey: string,
  ): Promise<boolean>;
  /** Sets `tombstoneKey` for `ttlMs` and deletes `key`, atomically. */
  tombstone(key: string, tombstoneKey: string, ttlMs: number): Promise<void>;
  publish(channel: string, message: string): Promise<void>;
  /** Calls `handler` for each message on `channel` until the returned function is called. */
  subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

const setUnlessTombstonedScript = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

export class RedisCache implements SharedCache {
  private readonly client: Redis;
  private subscriber: Redis | undefined;
  private readonly handlers = new Map<string, Set<(message: string) => void>>();

  constructor(private readonly url: string) {
    this.client = RedisCache.connect(url);
  }

  private static connect(url: string): Redis {
    const client = new Redis(url, {
      // Fail calls fast while Redis is away instead of queueing them without bound;
      // callers fall back to Postgres and readiness reports the outage.
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      lazyConnect: false,
    });
    client.on("error", () => undefined);
    return client;
  }

  /** Resolves once connected, or rejects with a message naming what failed (never the URL's password). */
  ready(timeoutMs = 5000): Promise<void> {
    return RedisCache.whenReady(this.client, timeoutMs);
  }

  private static async whenReady(client: Redis, timeoutMs: number): Promise<void> {
    if (client.status === "ready") return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`Redis did not answer within ${timeoutMs}ms`)),
        timeoutMs,
      );
      client.once("ready", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  get(key: string): Promise<string | null> {
    return this.client.get(key);
  }

  async setUnlessTombstoned(
    key: string,
    value: string,
    ttlMs: number,
    tombstoneKey: string,
  ): Promise<boolean> {
    const stored = await this.client.eval(
      setUnlessTombstonedScript,
      2,
      key,
      tombstoneKey,
      value,
      String(ttlMs),
    );
    return stored === 1;
  }

  async tombstone(key: string, tombstoneKey: string, ttlMs: number): Promise<void> {
    await this.client.multi().set(tombstoneKey, "1", "PX", ttlMs).del(key).exec();
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.client.publish(channel, message);
  }

  async subscribe(
    channel: string,
    handler: (message: string) => void,
  ): Promise<() => Promise<void>> {
    if (!this.subscriber) {
      this.subscriber = RedisCache.connect(this.url);
      this.subscriber.on("message", (ch: string, message: string) => {
        for (const h of this.handlers.get(ch) ?? []) h(message);
      });
    }
    const subscriber = this.subscriber;
    await RedisCache.whenReady(subscriber, 5000);
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      await subscriber.subscribe(channel);
    }
    set.add(handler);
    return async () => {
      set.delete(handler);
      if (set.size === 0) {
        this.handlers.delete(channel);
        await subscriber.unsubscribe(channel).catch(() => undefined);
      }
    };
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    this.client.disconnect();
    this.subscriber?.disconnect();
  }
}

/** The in-process stand-in for Redis in a single all-in-one process. */
export class MemoryCache implements SharedCache {
  private readonly values = new Map<string, { value: string; expires: number }>();
  private readonly channels = new Map<string, Set<(message: string) => void>>();

  constructor(private readonly now: () => number = Date.now) {}

  async get(key: string): Promise<string | null> {
    const entry = this.values.get(key);
    if (!entry) return null;
    if (entry.expires <= this.now()) {
      this.values.delete(key);
      return null;
    }
    return entry.value;
  }

  async setUnlessTombstoned(
    key: string,
    value: string,
    ttlMs: number,
    tombstoneKey: string,
  ): Promise<boolean> {
    if ((await this.get(tombstoneKey)) !== null) return false;
    this.sweep();
    this.values.set(key, { value, expires: this.now() + ttlMs });
    return true;
  }

  async tombstone(key: string, tombstoneKey: string, ttlMs: number): Promise<void> {
    this.values.set(tombstoneKey, { value: "1", expires: this.now() + ttlMs });
    this.values.delete(key);
  }

  async publish(channel: string, message: string): Promise<void> {
    for (const handler of this.channels.get(channel) ?? []) queueMicrotask(() => handler(message));
  }

  async subscribe(
    channel: string,
    handler: (message: string) => void,
  ): Promise<() => Promise<void>> {
    const set = this.channels.get(channel) ?? new Set();
    this.channels.set(channel, set);
    set.add(handler);
    return async () => void set.delete(handler);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.values.clear();
    this.channels.clear();
  }

  /** Drops expired entries now and then, so a long-running process does not keep them forever. */
  private sweep(): void {
    if (this.values.size < 10_000) return;
    const now = this.now();
    for (const [key, entry] of this.values) if (entry.expires <= now) this.values.delete(key);
  }
}
