import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type {
  AuthenticateResponse,
  IdentityService,
} from "../../gen/airlock/identity/v1/identity_pb.js";
import { unauthenticated, unavailable } from "./errors.js";
import type { SharedCache } from "./shared-cache.js";

/** Identity publishes the id of every revoked token here. */
export const revocationChannel = "airlock:identity:revoked";

/**
 * Resolves principals' tokens through the identity service for processes
 * that do not host it, keeping answers in process for at most `ttlMs` (and
 * never past the token's expiry). A revocation message drops the answer at
 * once, on every process that listens.
 */
export class RemoteAuthenticator {
  private readonly answers = new Map<string, { answer: AuthenticateResponse; expires: number }>();
  private readonly tokensById = new Map<string, string>();
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(
    private readonly identity: Client<typeof IdentityService>,
    private readonly cache: SharedCache,
    private readonly ttlMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.cache.subscribe(revocationChannel, (tokenId) => {
      const token = this.tokensById.get(tokenId);
      if (token !== undefined) this.answers.delete(token);
      this.tokensById.delete(tokenId);
    });
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.();
  }

  async authenticate(token: string): Promise<AuthenticateResponse> {
    const now = this.now();
    const hit = this.answers.get(token);
    if (hit && hit.expires > now) return hit.answer;
    let answer: AuthenticateResponse;
    try {
      answer = await this.identity.authenticate({ token });
    } catch (err) {
      if (ConnectError.from(err).code === Code.Unauthenticated) throw unauthenticated();
      throw unavailable("the identity service did not answer", err);
    }
    const expires = Math.min(
      now + this.ttlMs,
      answer.expireTime ? timestampMs(answer.expireTime) : now,
    );
    if (this.answers.size > 100_000) {
      this.answers.clear();
      this.tokensById.clear();
    }
    this.answers.set(token, { answer, expires });
    this.tokensById.set(answer.tokenId, token);
    return answer;
  }
}
