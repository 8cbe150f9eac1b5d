import { auditEvent, type AuditEvent } from "../kit/audit-events.js";
import { denied, invalid, notFound, precondition, unauthenticated } from "../kit/errors.js";
import { newId } from "../kit/ids.js";
import type { Logger } from "../kit/log.js";
import { access, adminRole, isAdmin, requireAdminScope, type Actor } from "./authorize.js";
import type { OidcVerifier } from "./oidc.js";
import type { Session, SessionCache } from "./session-cache.js";
import type {
  IdentityStore,
  NewPrincipal,
  NewToken,
  PrincipalRecord,
  TokenCursor,
  TokenRecord,
} from "./store.js";
import {
  defaultScopes,
  digest,
  mintToken,
  parseToken,
  secretMatches,
  validateScopes,
} from "./tokens.js";
import * as validate from "./validate.js";

export interface IdentitySettings {
  tokenTtlMs: number;
  tokenMaxTtlMs: number;
  sessionTtlMs: number;
}

export interface OidcLogin {
  verifier: OidcVerifier;
  /** The org that users of this IdP belong to. */
  orgName: string;
  /** IdP groups whose members are the org's admins. */
  adminGroups: readonly string[];
}

export interface IdentityDeps {
  store: IdentityStore;
  sessions: SessionCache;
  settings: IdentitySettings;
  oidc: OidcLogin | undefined;
  log: Logger;
  now?: () => number;
}

/** A token's text (returned once) with its stored description. */
export interface IssuedToken {
  text: string;
  token: TokenRecord;
}

// Compared against when a token id is unknown, so that unknown and wrong
// secrets take the same time.
const decoyDigest = digest("decoy");

/** Identity's domain: authentication, sign-in, principals and tokens. */
export class Identity {
  private readonly now: () => number;

  constructor(private readonly deps: IdentityDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The session behind a token. Every kind of bad token fails the same way. */
  async authenticate(text: string): Promise<Session> {
    const parts = parseToken(text);
    if (!parts) throw unauthenticated();
    const now = this.now();
    const cached = await this.deps.sessions.get(parts.id).catch((err: unknown) => {
      this.deps.log.warn(
        { err: (err as Error).message },
        "session cache unavailable; reading Postgres",
      );
      return undefined;
    });
    if (cached) {
      if (
        !secretMatches(parts.secret, cached.token.secretSha256) ||
        cached.token.expiresAt.getTime() <= now
      ) {
        throw unauthenticated();
      }
      return cached;
    }
    const found = await this.deps.store.findTokenForAuth(parts.id);
    const matches = secretMatches(parts.secret, found?.token.secretSha256 ?? decoyDigest);
    if (
      !found ||
      !matches ||
      found.token.revokedAt !== null ||
      found.token.expiresAt.getTime() <= now
    ) {
      throw unauthenticated();
    }
    const session: Session = { token: found.token, principal: found.principal };
    await this.deps.sessions.put(session, now).catch((err: unknown) => {
      this.deps.log.warn({ err: (err as Error).message }, "session cache unavailable; not cached");
    });
    return session;
  }

  /** Signs a user in with an ID token from the IdP and issues a session token. */
  async exchangeOidcToken(
    idToken: string,
  ): Promise<IssuedToken & { principal: PrincipalRecord; created: boolean }> {
    const oidc = this.deps.oidc;
    if (!oidc) throw precondition("single sign-on is not configured (AIRLOCK_OIDC_ISSUER)");
    const claims = await oidc.verifier.verify(idToken);
    const org = await this.deps.store.findOrgByName(oidc.orgName);
    if (!org)
      throw precondition(`org ${oidc.orgName} does not exist yet: run airlock bootstrap first`);
    const link = { issuer: claims.issuer, subject: claims.subject };
    let user = await this.deps.store.findUserByOidc(claims.issuer, claims.subject);
    let created = false;
    if (user) {
      await this.deps.store.recordSignIn(user.id, link, claims.groups);
    } else {
      // A user created by bootstrap signs in for the first time: link by email, but only
      // an address the IdP says it verified, or anyone could claim the admin's account.
      // An address the IdP asserts but that is not one (or not verified) is simply not used.
      const email =
        claims.email && claims.emailVerified ? validate.emailOrUndefined(claims.email) : undefined;
      const existing = email ? await this.deps.store.findUnlinkedUser(org.id, email) : undefined;
      if (existing) {
        await this.deps.store.recordSignIn(existing.id, link, claims.groups, {
          ...auditEvent("identity.principal", "linked", org.id, existing.id, existing.id),
          attributes: { issuer: claims.issuer },
        });
        user = existing;
      } else {
        const id = newId("usr");
        const roles = claims.groups.some((g) => oidc.adminGroups.includes(g))
          ? [adminRole]
          : ["developer"];
        user = await this.deps.store.createPrincipal(
          {
            id,
            orgId: org.id,
            kind: "user",
            displayName: claims.name ?? email ?? claims.subject,
            email: email ?? null,
            ownerId: null,
            groups: claims.groups,
            roles,
            workspace: null,
            repositories: [],
            oidc: link,
          },
          {
            ...auditEvent("identity.principal", "created", org.id, id, id),
            attributes: { kind: "user", roles, via: "oidc" },
          },
        );
        created = true;
      }
    }
    const minted = mintToken();
    const token = await this.deps.store.createToken(
      this.newToken(
        minted,
        user,
        "sso session",
        defaultScopes("user"),
        this.deps.settings.sessionTtlMs,
        user.id,
        "session",
      ),
      tokenCreated(user.org.id, user.id, minted.id, "session"),
    );
    return { text: minted.text, token, principal: { ...user, groups: claims.groups }, created };
  }

  async createToken(
    actor: Actor,
    request: {
      principalId: string;
      name: string;
      scopes: readonly string[];
      ttlMs: number | undefined;
    },
  ): Promise<IssuedToken> {
    requireAdminScope(actor);
    const target = await this.visiblePrincipal(actor, request.principalId || actor.id);
    const scopes = request.scopes.length
      ? validateScopes(request.scopes)
      : defaultScopes(target.kind);
    const ttl = request.ttlMs ?? this.deps.settings.tokenTtlMs;
    if (ttl <= 0 || ttl > this.deps.settings.tokenMaxTtlMs) {
      throw invalid(
        `ttl: must be positive and at most ${this.deps.settings.tokenMaxTtlMs / 86_400_000} days`,
      );
    }
    const minted = mintToken();
    const token = await this.deps.store.createToken(
      this.newToken(minted, target, validate.tokenName(request.name), scopes, ttl, actor.id, "api"),
      tokenCreated(target.org.id, actor.id, minted.id, "api", target.id, scopes),
    );
    return { text: minted.text, token };
  }

  async listTokens(
    actor: Actor,
    request: {
      principalId: string;
      includeInactive: boolean;
      pageSize: number;
      after: TokenCursor | undefined;
    },
  ): Promise<{ tokens: TokenRecord[]; next: TokenCursor | undefined }> {
    requireAdminScope(actor);
    const target = await this.visiblePrincipal(actor, request.principalId || actor.id);
    const limit = request.pageSize === 0 ? 100 : request.pageSize;
    if (limit < 0 || limit > 1000) throw invalid("page_size: from 1 to 1000");
    const rows = await this.deps.store.listTokens({
      principalId: target.id,
      includeInactive: request.includeInactive,
      now: new Date(this.now()),
      limit: limit + 1,
      after: request.after,
    });
    const tokens = rows.slice(0, limit);
    const last = tokens[tokens.length - 1];
    return {
      tokens,
      next: rows.length > limit && last ? { createdAt: last.createdAt, id: last.id } : undefined,
    };
  }

  async revokeToken(actor: Actor, tokenId: string): Promise<TokenRecord> {
    requireAdminScope(actor);
    const token = await this.deps.store.getToken(validate.tokenId(tokenId));
    if (!token) throw notFound("no such token");
    await this.visiblePrincipal(actor, token.principalId, "no such token");
    const revoked = await this.deps.store.revokeToken(token.id, new Date(this.now()), {
      ...auditEvent("identity.token", "revoked", token.orgId, actor.id, token.id),
      attributes: { principal_id: token.principalId },
    });
    // Postgres is the truth and says revoked; the cache entry goes, and every replica hears of it.
    await this.deps.sessions.revoke(token.id);
    return revoked!;
  }

  /**
   * Deletes tokens dead (revoked or expired) since before `before`; their
   * history stays in the audit log. A deleted token authenticates as unknown,
   * which refuses it the same way.
   */
  purgeTokens(before: Date, dryRun: boolean): Promise<{ orgId: string; tokens: number }[]> {
    return this.deps.store.purgeTokens(before, dryRun);
  }

  async getPrincipal(actor: Actor, principalId: string): Promise<PrincipalRecord> {
    const id = principalId || actor.id;
    const principal = await this.deps.store.getPrincipal(validate.principalId(id));
    if (!principal || principal.org.id !== actor.orgId) throw notFound("no such principal");
    return principal;
  }

  /** For services: any principal, in any org. */
  async getPrincipalForService(principalId: string): Promise<PrincipalRecord> {
    const principal = await this.deps.store.getPrincipal(validate.principalId(principalId));
    if (!principal) throw notFound("no such principal");
    return principal;
  }

  async createPrincipal(
    actor: Actor,
    request: {
      kind: "agent" | "service_account";
      displayName: string;
      ownerId: string;
      roles: readonly string[];
      workspace: string;
      repositories: readonly string[];
    },
  ): Promise<PrincipalRecord> {
    requireAdminScope(actor);
    const admin = isAdmin(actor);
    if (request.kind === "service_account" && !admin)
      throw denied(`only an ${adminRole} may create service accounts`);
    if (request.roles.length > 0 && !admin) throw denied(`only an ${adminRole} may choose roles`);
    let ownerId: string | null = null;
    if (request.kind === "agent") {
      const owner = await this.visiblePrincipal(
        actor,
        request.ownerId || actor.id,
        "no such owner",
      );
      if (owner.kind !== "user") throw invalid("owner_id: an agent is owned by a user");
      ownerId = owner.id;
    } else if (request.ownerId) {
      throw invalid("owner_id: only agents have owners");
    }
    const isAgent = request.kind === "agent";
    const roles = request.roles.length ? validate.roles(request.roles) : isAgent ? ["agent"] : [];
    const id = newId(isAgent ? "agt" : "sva");
    const principal: NewPrincipal = {
      id,
      orgId: actor.orgId,
      kind: request.kind,
      displayName: validate.displayName(request.displayName),
      email: null,
      ownerId,
      groups: [],
      roles,
      workspace: isAgent ? validate.workspace(request.workspace) : null,
      repositories: isAgent ? validate.repositories(request.repositories) : [],
    };
    if (!isAgent && (request.workspace || request.repositories.length)) {
      throw invalid("workspace and repositories bind agents only");
    }
    return this.deps.store.createPrincipal(principal, {
      ...auditEvent("identity.principal", "created", actor.orgId, actor.id, id),
      attributes: { kind: request.kind, roles, owner_id: ownerId ?? "" },
    });
  }

  /** Creates the first org, its admin and a token, while no principal exists. */
  async bootstrap(request: {
    orgName: string;
    adminEmail: string;
  }): Promise<IssuedToken & { admin: PrincipalRecord }> {
    const org = { id: newId("org"), name: validate.orgName(request.orgName) };
    const email = validate.email(request.adminEmail);
    const adminId = newId("usr");
    const admin: NewPrincipal = {
      id: adminId,
      orgId: org.id,
      kind: "user",
      displayName: email,
      email,
      ownerId: null,
      groups: [],
      roles: [adminRole],
      workspace: null,
      repositories: [],
    };
    const minted = mintToken();
    const token = this.newToken(
      minted,
      { ...admin, org },
      "bootstrap",
      defaultScopes("user"),
      this.deps.settings.tokenTtlMs,
      adminId,
      "api",
    );
    const done = await this.deps.store.bootstrap(org, admin, token, [
      {
        ...auditEvent("identity.org", "created", org.id, "anonymous", org.id),
        attributes: { name: org.name, via: "bootstrap" },
      },
      {
        ...auditEvent("identity.principal", "created", org.id, "anonymous", adminId),
        attributes: { kind: "user", roles: admin.roles, via: "bootstrap" },
      },
      tokenCreated(org.id, "anonymous", minted.id, "api", adminId, token.scopes),
    ]);
    if (!done)
      throw precondition("already bootstrapped: principals exist; sign in or use an admin token");
    const stored = await this.deps.store.getToken(minted.id);
    const principal = await this.deps.store.getPrincipal(adminId);
    return { text: minted.text, token: stored!, admin: principal! };
  }

  private async visiblePrincipal(
    actor: Actor,
    id: string,
    missing = "no such principal",
  ): Promise<PrincipalRecord> {
    const principal = await this.deps.store.getPrincipal(validate.principalId(id));
    if (!principal) throw notFound(missing);
    const verdict = access(actor, {
      id: principal.id,
      orgId: principal.org.id,
      ownerId: principal.ownerId,
    });
    if (verdict === "invisible") throw notFound(missing);
    if (verdict === "denied")
      throw denied(`only ${principal.id} itself, its owner or an ${adminRole} may do this`);
    return principal;
  }

  private newToken(
    minted: ReturnType<typeof mintToken>,
    principal: Pick<PrincipalRecord, "id"> & { org: { id: string } },
    name: string,
    scopes: string[],
    ttlMs: number,
    createdBy: string,
    kind: NewToken["kind"],
  ): NewToken {
    return {
      id: minted.id,
      principalId: principal.id,
      orgId: principal.org.id,
      kind,
      name,
      secretSha256: minted.secretSha256,
      scopes,
      createdBy,
      expiresAt: new Date(this.now() + ttlMs),
    };
  }
}

function tokenCreated(
  orgId: string,
  actor: string,
  tokenId: string,
  tokenKind: string,
  principalId = actor,
  scopes: readonly string[] = [],
): AuditEvent {
  return {
    ...auditEvent("identity.token", "created", orgId, actor, tokenId),
    attributes: { principal_id: principalId, token_kind: tokenKind, scopes },
  };
}
