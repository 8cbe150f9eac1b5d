import { readDuration, readString, readUrl, requireString, type Env } from "../kit/config.js";
import type { IdentitySettings } from "./identity.js";
import type { OidcSettings } from "./oidc.js";

export interface IdentityConfig {
  settings: IdentitySettings;
  sessionCacheTtlMs: number;
  oidc: (OidcSettings & { orgName: string; adminGroups: string[] }) | undefined;
}

const day = 86_400_000;

/** The identity service's settings; the only place it reads the environment. */
export function readIdentityConfig(env: Env): IdentityConfig {
  const tokenMaxTtlMs = readDuration(env, "AIRLOCK_TOKEN_MAX_TTL", "400d", { min: 60_000 });
  const settings: IdentitySettings = {
    tokenTtlMs: readDuration(env, "AIRLOCK_TOKEN_TTL", "90d", { min: 60_000, max: tokenMaxTtlMs }),
    tokenMaxTtlMs,
    sessionTtlMs: readDuration(env, "AIRLOCK_SESSION_TTL", "12h", { min: 60_000, max: 30 * day }),
  };
  const sessionCacheTtlMs = readDuration(env, "AIRLOCK_SESSION_CACHE_TTL", "5m", {
    min: 1000,
    max: day,
  });
  const issuer = readUrl(env, "AIRLOCK_OIDC_ISSUER");
  if (!issuer) return { settings, sessionCacheTtlMs, oidc: undefined };
  const need = (name: string) =>
    requireString(env, name, "it is required with AIRLOCK_OIDC_ISSUER");
  return {
    settings,
    sessionCacheTtlMs,
    oidc: {
      // The issuer is compared with the token's `iss` exactly as the IdP writes it.
      issuer: readString(env, "AIRLOCK_OIDC_ISSUER")!,
      audience: need("AIRLOCK_OIDC_AUDIENCE"),
      jwksUrl: readUrl(env, "AIRLOCK_OIDC_JWKS_URL"),
      groupsClaim: readString(env, "AIRLOCK_OIDC_GROUPS_CLAIM", "groups"),
      orgName: need("AIRLOCK_OIDC_ORG"),
      adminGroups: readString(env, "AIRLOCK_OIDC_ADMIN_GROUPS", "")
        .split(",")
        .map((g) => g.trim())
        .filter(Boolean),
    },
  };
}
