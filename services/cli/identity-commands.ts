import { readFileSync } from "node:fs";
import { create, toJson } from "@bufbuild/protobuf";
import { durationFromMs, timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  BootstrapResponseSchema,
  CreateTokenResponseSchema,
  ExchangeOidcTokenResponseSchema,
  IdentityService,
  ListTokensResponseSchema,
  PrincipalKind,
  PrincipalSchema,
  TokenInfoSchema,
  type Principal,
  type TokenInfo,
} from "../../gen/airlock/identity/v1/identity_pb.js";
import { parseDuration } from "../kit/config.js";
import { PolicyService } from "../../gen/airlock/policy/v1/policy_pb.js";
import { connect, describeFailure, type ClientOptions } from "./client.js";
import { starterBundle } from "./policy-commands.js";
import { UsageError, type Output } from "./output.js";

/**
 * `airlock bootstrap`: creates the first org and admin, and applies the
 * starter policy bundle so the admin can work at once; the admin token goes
 * to stdout, once.
 */
export async function bootstrap(
  opts: ClientOptions,
  out: Output,
  flags: { org?: string; admin?: string },
) {
  if (!flags.org || !flags.admin)
    throw new UsageError("usage: airlock bootstrap --org ORG --admin EMAIL");
  const res = await connect(IdentityService, opts).bootstrap({
    orgName: flags.org,
    adminEmail: flags.admin,
  });
  // The token exists now: whatever happens to the policy, it must still be printed.
  const starter = await connect(PolicyService, { ...opts, token: res.token })
    .applyBundle({ orgId: res.org!.id, bundle: starterBundle() })
    .then(
      (applied) =>
        `applied the starter policy: ${applied.added.length} rules from deploy/policies/starter.csv`,
    )
    .catch((err: unknown) => {
      process.exitCode = 1;
      return `could not apply the starter policy (${describeFailure(err, opts.url)}); apply it with: airlock policy apply deploy/policies/starter.csv`;
    });
  out.result(toJson(BootstrapResponseSchema, res), () => {
    out.note(
      `created org ${res.org?.name} (${res.org?.id}) and admin ${res.admin?.email} (${res.admin?.id})`,
    );
    out.note(starter);
    out.note("the admin token below is shown once: keep it (export AIRLOCK_TOKEN=…)");
    return res.token;
  });
}

/** `airlock login --id-token JWT|-`: exchanges an IdP ID token for an Airlock session token. */
export async function login(opts: ClientOptions, out: Output, flags: { "id-token"?: string }) {
  const given = flags["id-token"];
  if (!given)
    throw new UsageError("usage: airlock login --id-token JWT (or - to read it from stdin)");
  const idToken = given === "-" ? readFileSync(0, "utf8").trim() : given;
  const res = await connect(IdentityService, opts).exchangeOidcToken({ idToken });
  out.result(toJson(ExchangeOidcTokenResponseSchema, res), () => {
    out.note(
      `signed in as ${res.principal?.email || res.principal?.id}; session until ${date(res.tokenInfo?.expireTime)}`,
    );
    return res.token;
  });
}

export async function whoami(opts: ClientOptions, out: Output, principalId = "") {
  const res = await connect(IdentityService, opts).getPrincipal({ principalId });
  out.result(toJson(PrincipalSchema, res.principal ?? create(PrincipalSchema)), () =>
    describePrincipal(res.principal),
  );
}

export async function tokenCreate(
  opts: ClientOptions,
  out: Output,
  flags: { principal?: string; name?: string; scope?: string[]; ttl?: string },
) {
  let ttl;
  if (flags.ttl !== undefined) {
    const ms = parseDuration(flags.ttl);
    if (ms === undefined)
      throw new UsageError(`--ttl ${flags.ttl}: expected a duration like 12h or 30d`);
    ttl = durationFromMs(ms);
  }
  const res = await connect(IdentityService, opts).createToken({
    principalId: flags.principal ?? "",
    name: flags.name ?? "",
    scopes: flags.scope ?? [],
    ttl,
  });
  out.result(toJson(CreateTokenResponseSchema, res), () => {
    const t = res.tokenInfo;
    out.note(
      `token ${t?.prefix} for ${t?.principalId}, scopes ${t?.scopes.join(",")}, expires ${date(t?.expireTime)}; shown once:`,
    );
    return res.token;
  });
}

export async function tokenList(
  opts: ClientOptions,
  out: Output,
  flags: { principal?: string; all?: boolean },
) {
  const client = connect(IdentityService, opts);
  const tokens: TokenInfo[] = [];
  let pageToken = "";
  do {
    const page = await client.listTokens({
      principalId: flags.principal ?? "",
      includeInactive: flags.all ?? false,
      pageToken,
    });
    tokens.push(...page.tokens);
    pageToken = page.nextPageToken;
  } while (pageToken);
  out.result(
    toJson(ListTokensResponseSchema, {
      $typeName: ListTokensResponseSchema.typeName,
      tokens,
      nextPageToken: "",
    }),
    () =>
      tokens.length === 0
        ? "no tokens"
        : tokens
            .map((t) =>
              [
                t.id,
                t.name,
                t.scopes.join(","),
                `expires ${date(t.expireTime)}`,
                t.revokeTime ? `revoked ${date(t.revokeTime)}` : "active",
              ].join("\t"),
            )
            .join("\n"),
  );
}

export async function tokenRevoke(opts: ClientOptions, out: Output, tokenId: string | undefined) {
  if (!tokenId) throw new UsageError("usage: airlock token revoke TOKEN_ID");
  const res = await connect(IdentityService, opts).revokeToken({
    tokenId: tokenId.replace(/^alk_/, ""),
  });
  out.result(
    toJson(TokenInfoSchema, res.tokenInfo ?? create(TokenInfoSchema)),
    () => `revoked ${res.tokenInfo?.prefix}`,
  );
}

export async function principalCreate(
  opts: ClientOptions,
  out: Output,
  kind: "agent" | "service-account",
  name: string | undefined,
  flags: { owner?: string; workspace?: string; repo?: string[]; role?: string[] },
) {
  if (!name) throw new UsageError(`usage: airlock ${kind} create NAME`);
  const res = await connect(IdentityService, opts).createPrincipal({
    kind: kind === "agent" ? PrincipalKind.AGENT : PrincipalKind.SERVICE_ACCOUNT,
    displayName: name,
    ownerId: flags.owner ?? "",
    workspace: flags.workspace ?? "",
    repositories: flags.repo ?? [],
    roles: flags.role ?? [],
  });
  out.result(toJson(PrincipalSchema, res.principal ?? create(PrincipalSchema)), () =>
    describePrincipal(res.principal),
  );
}

function describePrincipal(p: Principal | undefined): string {
  if (!p) return "";
  return [
    `${p.id}\t${PrincipalKind[p.kind].toLowerCase()}\t${p.displayName}`,
    `org\t${p.org?.name} (${p.org?.id})`,
    p.roles.length ? `roles\t${p.roles.join(", ")}` : "",
    p.groups.length ? `groups\t${p.groups.join(", ")}` : "",
    p.ownerId ? `owner\t${p.ownerId}` : "",
    p.workspace ? `workspace\t${p.workspace}` : "",
    p.repositories.length ? `repositories\t${p.repositories.join(", ")}` : "",
  ]
    .filter(Boolean)
    .join("\n");
}

function date(t: Timestamp | undefined): string {
  return t ? timestampDate(t).toISOString() : "never";
}
