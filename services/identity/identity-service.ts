import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { timestampDate, type Duration } from "@bufbuild/protobuf/wkt";
import { IdentityService } from "../../gen/airlock/identity/v1/identity_pb.js";
import { callerKey, isService, principalCaller } from "../kit/caller.js";
import { denied, invalid, unauthenticated } from "../kit/errors.js";
import type { Actor } from "./authorize.js";
import { kindFromProto, principalToProto, sessionToProto, tokenToProto } from "./convert.js";
import type { Identity } from "./identity.js";
import type { TokenCursor } from "./store.js";
import { parseToken } from "./tokens.js";

/** Maps identity's RPCs onto the domain; authentication happened in the interceptor. */
export function identityService(identity: Identity): ServiceImpl<typeof IdentityService> {
  return {
    async authenticate(req, ctx) {
      const caller = ctx.values.get(callerKey);
      if (caller.kind === "principal" && parseToken(req.token)?.id !== caller.tokenId) {
        throw denied("a principal may authenticate only the token it calls with");
      }
      if (caller.kind === "anonymous") throw unauthenticated();
      return sessionToProto(await identity.authenticate(req.token));
    },

    async exchangeOidcToken(req) {
      const signedIn = await identity.exchangeOidcToken(req.idToken);
      return {
        token: signedIn.text,
        tokenInfo: tokenToProto(signedIn.token),
        principal: principalToProto(signedIn.principal),
        created: signedIn.created,
      };
    },

    async createToken(req, ctx) {
      const issued = await identity.createToken(actor(ctx), {
        principalId: req.principalId,
        name: req.name,
        scopes: req.scopes,
        ttlMs: req.ttl ? durationMs(req.ttl) : undefined,
      });
      return { token: issued.text, tokenInfo: tokenToProto(issued.token) };
    },

    async listTokens(req, ctx) {
      const page = await identity.listTokens(actor(ctx), {
        principalId: req.principalId,
        includeInactive: req.includeInactive,
        pageSize: req.pageSize,
        after: decodeCursor(req.pageToken),
      });
      return {
        tokens: page.tokens.map(tokenToProto),
        nextPageToken: page.next ? encodeCursor(page.next) : "",
      };
    },

    async revokeToken(req, ctx) {
      return { tokenInfo: tokenToProto(await identity.revokeToken(actor(ctx), req.tokenId)) };
    },

    async getPrincipal(req, ctx) {
      const caller = ctx.values.get(callerKey);
      const principal =
        caller.kind === "service"
          ? await identity.getPrincipalForService(req.principalId)
          : await identity.getPrincipal(actor(ctx), req.principalId);
      return { principal: principalToProto(principal) };
    },

    async purgeTokens(req, ctx) {
      if (!isService(ctx.values.get(callerKey), "retention"))
        throw denied("only the retention service purges tokens");
      if (!req.before) throw invalid("before: required");
      const orgs = await identity.purgeTokens(timestampDate(req.before), req.dryRun);
      return { orgs: orgs.map((o) => ({ orgId: o.orgId, tokens: BigInt(o.tokens) })) };
    },

    async createPrincipal(req, ctx) {
      const kind = kindFromProto(req.kind);
      if (kind !== "agent" && kind !== "service_account") {
        throw invalid(
          "kind: PRINCIPAL_KIND_AGENT or PRINCIPAL_KIND_SERVICE_ACCOUNT (users come from sign-in)",
        );
      }
      const principal = await identity.createPrincipal(actor(ctx), {
        kind,
        displayName: req.displayName,
        ownerId: req.ownerId,
        roles: req.roles,
        workspace: req.workspace,
        repositories: req.repositories,
      });
      return { principal: principalToProto(principal) };
    },

    async bootstrap(req) {
      const done = await identity.bootstrap({ orgName: req.orgName, adminEmail: req.adminEmail });
      return {
        org: { id: done.admin.org.id, name: done.admin.org.name },
        admin: principalToProto(done.admin),
        token: done.text,
        tokenInfo: tokenToProto(done.token),
      };
    },
  };
}

function actor(ctx: HandlerContext): Actor {
  const { principal, scopes } = principalCaller(ctx);
  return {
    id: principal.id,
    orgId: principal.org?.id ?? "",
    kind: kindFromProto(principal.kind) ?? "user",
    roles: principal.roles,
    scopes,
  };
}

function durationMs(d: Duration): number {
  if (d.seconds < 0n || d.nanos < 0) throw invalid("ttl: must be positive");
  return Number(d.seconds) * 1000 + Math.floor(d.nanos / 1e6);
}

function encodeCursor(c: TokenCursor): string {
  return Buffer.from(JSON.stringify([c.createdAt.toISOString(), c.id])).toString("base64url");
}

function decodeCursor(text: string): TokenCursor | undefined {
  if (text === "") return undefined;
  try {
    const [at, id] = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as [
      string,
      string,
    ];
    const createdAt = new Date(at);
    if (typeof id !== "string" || Number.isNaN(createdAt.getTime())) throw new Error("bad cursor");
    return { createdAt, id };
  } catch {
    throw invalid("page_token: not a token from a previous answer");
  }
}
