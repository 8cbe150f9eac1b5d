import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from "jose";
import { unauthenticated, unavailable } from "../kit/errors.js";

export interface OidcSettings {
  issuer: string;
  audience: string;
  /** Where the IdP publishes its keys; discovered from the issuer when unset. */
  jwksUrl?: URL;
  /** The claim that lists the user's groups. */
  groupsClaim: string;
}

/** What Airlock takes from a verified ID token. */
export interface OidcIdentity {
  issuer: string;
  subject: string;
  email: string | undefined;
  emailVerified: boolean;
  name: string | undefined;
  groups: string[];
}

const algorithms = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"];

/**
 * Verifies ID tokens against the IdP's published keys: signature, issuer,
 * audience, expiry (with a minute of clock tolerance). The key set is fetched
 * on first use and refreshed by jose when an unknown key id appears.
 */
export class OidcVerifier {
  private keys: Promise<JWTVerifyGetKey> | undefined;

  constructor(
    private readonly settings: OidcSettings,
    private readonly now: () => number = Date.now,
  ) {}

  async verify(idToken: string): Promise<OidcIdentity> {
    if (idToken.length === 0 || idToken.length > 16_384) throw unauthenticated("invalid ID token");
    const keys = await this.keySet();
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(idToken, keys, {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        algorithms,
        clockTolerance: 60,
        currentDate: new Date(this.now()),
        requiredClaims: ["sub", "exp", "iat"],
      }));
    } catch (err) {
      if (
        err instanceof errors.JWKSTimeout ||
        (err instanceof Error && !(err instanceof errors.JOSEError))
      ) {
        throw unavailable("the identity provider's keys could not be fetched", err);
      }
      throw unauthenticated("invalid ID token");
    }
    const groups = payload[this.settings.groupsClaim];
    return {
      issuer: this.settings.issuer,
      subject: String(payload.sub),
      email: typeof payload.email === "string" ? payload.email : undefined,
      emailVerified: payload.email_verified === true,
      name: typeof payload.name === "string" ? payload.name : undefined,
      groups: Array.isArray(groups)
        ? groups.filter((g): g is string => typeof g === "string").slice(0, 200)
        : [],
    };
  }

  private keySet(): Promise<JWTVerifyGetKey> {
    this.keys ??= this.discover().catch((err: unknown) => {
      this.keys = undefined;
      throw unavailable("the identity provider's discovery document could not be fetched", err);
    });
    return this.keys;
  }

  private async discover(): Promise<JWTVerifyGetKey> {
    if (this.settings.jwksUrl) return createRemoteJWKSet(this.settings.jwksUrl);
    const url = `${this.settings.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    const doc = (await res.json()) as { jwks_uri?: unknown };
    if (typeof doc.jwks_uri !== "string") throw new Error(`${url} has no jwks_uri`);
    return createRemoteJWKSet(new URL(doc.jwks_uri));
  }
}
