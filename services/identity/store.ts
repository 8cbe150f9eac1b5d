import type { AuditEvent } from "../kit/audit-events.js";

export type PrincipalKind = "user" | "agent" | "service_account";
export type TokenKind = "api" | "session";

export interface OrgRecord {
  id: string;
  name: string;
}

export interface PrincipalRecord {
  id: string;
  org: OrgRecord;
  kind: PrincipalKind;
  displayName: string;
  email: string | null;
  ownerId: string | null;
  groups: string[];
  roles: string[];
  workspace: string | null;
  repositories: string[];
  createdAt: Date;
}

export interface NewPrincipal extends Omit<PrincipalRecord, "org" | "createdAt"> {
  orgId: string;
  oidc?: { issuer: string; subject: string };
}

export interface TokenRecord {
  id: string;
  principalId: string;
  orgId: string;
  kind: TokenKind;
  name: string;
  secretSha256: Buffer;
  scopes: string[];
  createdBy: string;
  createdAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
}

export type NewToken = Omit<TokenRecord, "createdAt" | "revokedAt">;

/** A page position in a newest-first token list. */
export interface TokenCursor {
  createdAt: Date;
  id: string;
}

/**
 * Identity's persistence. Every change takes the audit event that describes
 * it and stores both in one transaction.
 */
export interface IdentityStore {
  /** Creates org, admin and token, unless any principal exists (then returns false). */
  bootstrap(
    org: OrgRecord,
    admin: NewPrincipal,
    token: NewToken,
    events: AuditEvent[],
  ): Promise<boolean>;
  findOrgByName(name: string): Promise<OrgRecord | undefined>;
  getPrincipal(id: string): Promise<PrincipalRecord | undefined>;
  findUserByOidc(issuer: string, subject: string): Promise<PrincipalRecord | undefined>;
  /** A user of the org with this email that has never signed in through the IdP. */
  findUnlinkedUser(orgId: string, email: string): Promise<PrincipalRecord | undefined>;
  /** Records a sign-in: links the IdP identity (first time) and refreshes groups. */
  recordSignIn(
    id: string,
    oidc: { issuer: string; subject: string },
    groups: string[],
    event?: AuditEvent,
  ): Promise<void>;
  createPrincipal(principal: NewPrincipal, event: AuditEvent): Promise<PrincipalRecord>;
  createToken(token: NewToken, event: AuditEvent): Promise<TokenRecord>;
  getToken(id: string): Promise<TokenRecord | undefined>;
  /** Token with its principal, for Authenticate. */
  findTokenForAuth(
    id: string,
  ): Promise<{ token: TokenRecord; principal: PrincipalRecord } | undefined>;
  listTokens(query: {
    principalId: string;
    includeInactive: boolean;
    now: Date;
    limit: number;
    after?: TokenCursor;
  }): Promise<TokenRecord[]>;
  /** Marks the token revoked (once); returns it, or undefined when it does not exist. */
  revokeToken(id: string, now: Date, event: AuditEvent): Promise<TokenRecord | undefined>;
  /** Deletes (or, dry, counts) tokens revoked or expired before `before`, per org. */
  purgeTokens(before: Date, dryRun: boolean): Promise<{ orgId: string; tokens: number }[]>;
}
