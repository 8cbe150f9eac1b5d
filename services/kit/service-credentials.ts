import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Credentials for calls between services: `alks.<payload>.<mac>`, where the
 * payload names the calling service, the audience (callee) and an expiry, and
 * the MAC is HMAC-SHA256 under the cluster's AIRLOCK_SERVICE_SECRET. They are
 * short-lived so a leaked one is useless within minutes, and verification is
 * a local HMAC, so no call waits on another service to be authorised.
 */
export const serviceCredentialPrefix = "alks.";

const lifetimeMs = 5 * 60_000;
/** Renew well before expiry so clock skew between hosts never rejects a fresh credential. */
const renewAfterMs = lifetimeMs / 2;
const allowedSkewMs = 30_000;

interface Payload {
  svc: string;
  aud: string;
  exp: number;
}

/** Generates a secret for an all-in-one process, where no other process needs it. */
export function generateServiceSecret(): string {
  return randomBytes(32).toString("base64url");
}

export class ServiceCredentials {
  private readonly key: Buffer;
  private readonly issued = new Map<string, { credential: string; renewAt: number }>();

  constructor(
    secret: string,
    /** The name of the service this process acts as. */
    readonly self: string,
    private readonly now: () => number = Date.now,
  ) {
    if (Buffer.byteLength(secret) < 32) {
      throw new Error("the service secret must be at least 32 bytes");
    }
    this.key = Buffer.from(secret);
  }

  /** A credential for calling `audience`, reused until half its life has passed. */
  issue(audience: string): string {
    const now = this.now();
    const cached = this.issued.get(audience);
    if (cached && cached.renewAt > now) return cached.credential;
    const payload = Buffer.from(
      JSON.stringify({ svc: this.self, aud: audience, exp: now + lifetimeMs } satisfies Payload),
    ).toString("base64url");
    const credential = `${serviceCredentialPrefix}${payload}.${this.mac(payload)}`;
    this.issued.set(audience, { credential, renewAt: now + renewAfterMs });
    return credential;
  }

  /** The calling service's name, or undefined when the credential is not valid for one of `audiences`. */
  verify(credential: string, audiences: readonly string[]): string | undefined {
    if (!credential.startsWith(serviceCredentialPrefix)) return undefined;
    const [payload, mac, extra] = credential.slice(serviceCredentialPrefix.length).split(".");
    if (!payload || !mac || extra !== undefined) return undefined;
    const expected = Buffer.from(this.mac(payload));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let parsed: Partial<Payload>;
    try {
      parsed = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Partial<Payload>;
    } catch {
      return undefined;
    }
    if (typeof parsed.svc !== "string" || typeof parsed.exp !== "number") return undefined;
    if (typeof parsed.aud !== "string" || !audiences.includes(parsed.aud)) return undefined;
    if (parsed.exp + allowedSkewMs < this.now()) return undefined;
    return parsed.svc;
  }

  private mac(payload: string): string {
    return createHmac("sha256", this.key).update(payload).digest("base64url");
  }
}
