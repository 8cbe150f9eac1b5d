import { revocationChannel } from "../kit/remote-authenticator.js";
import type { SharedCache } from "../kit/shared-cache.js";
import type { PrincipalRecord, TokenRecord } from "./store.js";

/** What Authenticate needs about a token, as kept in Redis. */
export interface Session {
  token: Pick<TokenRecord, "id" | "secretSha256" | "scopes" | "expiresAt">;
  principal: PrincipalRecord;
}

const key = (tokenId: string) => `airlock:identity:session:${tokenId}`;
const tombstoneKey = (tokenId: string) => `airlock:identity:revoked:${tokenId}`;

/**
 * The Redis session cache in front of Postgres. Entries never outlive their
 * token. Revocation leaves a tombstone so that a replica which read the
 * token from Postgres just before the revocation cannot cache it afterwards.
 */
export class SessionCache {
  constructor(
    private readonly cache: SharedCache,
    private readonly ttlMs: number,
  ) {}

  async get(tokenId: string): Promise<Session | undefined> {
    const text = await this.cache.get(key(tokenId));
    if (text === null) return undefined;
    const raw = JSON.parse(text) as {
      token: { id: string; secretSha256: string; scopes: string[]; expiresAt: string };
      principal: PrincipalRecord & { createdAt: string };
    };
    return {
      token: {
        ...raw.token,
        secretSha256: Buffer.from(raw.token.secretSha256, "base64"),
        expiresAt: new Date(raw.token.expiresAt),
      },
      principal: { ...raw.principal, createdAt: new Date(raw.principal.createdAt) },
    };
  }

  async put(session: Session, now: number): Promise<void> {
    const ttl = Math.min(this.ttlMs, session.token.expiresAt.getTime() - now);
    if (ttl <= 0) return;
    const value = JSON.stringify({
      token: { ...session.token, secretSha256: session.token.secretSha256.toString("base64") },
      principal: session.principal,
    });
    await this.cache.setUnlessTombstoned(
      key(session.token.id),
      value,
      ttl,
      tombstoneKey(session.token.id),
    );
  }

  async revoke(tokenId: string): Promise<void> {
    // The tombstone only has to outlast a cache fill already under way; the cache TTL is ample.
    await this.cache.tombstone(key(tokenId), tombstoneKey(tokenId), this.ttlMs);
    await this.cache.publish(revocationChannel, tokenId);
  }
}
