import type { Pool, PoolClient } from "../kit/pg.js";

const lockKey = "hashtext('airlock.retention.run')";

/** Releases a held lock. */
export type Release = () => Promise<void>;

/**
 * One retention run at a time across replicas: a Postgres session advisory
 * lock, held on a connection of its own for the run's length. Postgres
 * releases it the moment that connection dies, so a replica killed midway
 * never leaves a stale lock behind. Within a process a flag comes first,
 * because a session lock is re-entrant for its own session; the embedded
 * database (one connection, one process) relies on the flag alone.
 */
export class RunLock {
  private held = false;

  constructor(
    private readonly pool: Pool,
    private readonly sharedDatabase: boolean,
  ) {}

  /** The lock, or undefined when a run holds it here or on another replica. */
  async tryAcquire(): Promise<Release | undefined> {
    if (this.held) return undefined;
    this.held = true;
    if (!this.sharedDatabase) return this.releaser(undefined);
    let client: PoolClient | undefined;
    try {
      client = await this.pool.connect();
      const { rows } = await client.query<{ ok: boolean }>(
        `SELECT pg_try_advisory_lock(${lockKey}) AS ok`,
      );
      if (rows[0]!.ok) return this.releaser(client);
      client.release();
    } catch (err) {
      client?.release(true);
      this.held = false;
      throw err;
    }
    this.held = false;
    return undefined;
  }

  /** Waits for the lock, looking again every `pollMs`, until `signal` aborts. */
  async acquire(signal: AbortSignal, pollMs = 250): Promise<Release> {
    for (;;) {
      const release = await this.tryAcquire();
      if (release) return release;
      signal.throwIfAborted();
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  private releaser(client: PoolClient | undefined): Release {
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      try {
        await client?.query(`SELECT pg_advisory_unlock(${lockKey})`);
        client?.release();
      } catch {
        // A broken connection takes the lock with it; drop it from the pool.
        client?.release(true);
      } finally {
        this.held = false;
      }
    };
  }
}
