import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  AuthenticateResponseSchema,
  PrincipalKind,
  PrincipalSchema,
  TokenInfoSchema,
  TokenKind,
  type AuthenticateResponse,
  type Principal,
  type TokenInfo,
} from "../../gen/airlock/identity/v1/identity_pb.js";
import type { Session } from "./session-cache.js";
import type { PrincipalRecord, TokenRecord } from "./store.js";
import { displayPrefix } from "./tokens.js";
import type { PrincipalKind as Kind } from "./store.js";

const kinds: Record<Kind, PrincipalKind> = {
  user: PrincipalKind.USER,
  agent: PrincipalKind.AGENT,
  service_account: PrincipalKind.SERVICE_ACCOUNT,
};

export function kindFromProto(kind: PrincipalKind): Kind | undefined {
  return (Object.keys(kinds) as Kind[]).find((k) => kinds[k] === kind);
}

export function principalToProto(p: PrincipalRecord): Principal {
  return create(PrincipalSchema, {
    id: p.id,
    kind: kinds[p.kind],
    org: { id: p.org.id, name: p.org.name },
    displayName: p.displayName,
    email: p.email ?? "",
    ownerId: p.ownerId ?? "",
    groups: p.groups,
    roles: p.roles,
    workspace: p.workspace ?? "",
    repositories: p.repositories,
    createTime: timestampFromDate(p.createdAt),
  });
}

/** Never includes the secret or its digest. */
export function tokenToProto(t: TokenRecord): TokenInfo {
  return create(TokenInfoSchema, {
    id: t.id,
    principalId: t.principalId,
    name: t.name,
    prefix: displayPrefix(t.id),
    scopes: t.scopes,
    kind: t.kind === "api" ? TokenKind.API : TokenKind.SESSION,
    createTime: timestampFromDate(t.createdAt),
    expireTime: timestampFromDate(t.expiresAt),
    revokeTime: t.revokedAt ? timestampFromDate(t.revokedAt) : undefined,
    createdBy: t.createdBy,
  });
}

export function sessionToProto(s: Session): AuthenticateResponse {
  return create(AuthenticateResponseSchema, {
    principal: principalToProto(s.principal),
    tokenId: s.token.id,
    scopes: s.token.scopes,
    expireTime: timestampFromDate(s.token.expiresAt),
  });
}
