import test from "ava";
import pg from "pg";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { IdentityService, PrincipalKind } from "../gen/airlock/identity/v1/identity_pb.js";
import { ServiceCredentials } from "../services/kit/service-credentials.js";
import { RedisCache } from "../services/kit/shared-cache.js";
import { revocationChannel } from "../services/kit/remote-authenticator.js";
import { formatToken, mintToken, parseToken } from "../services/identity/tokens.js";
import { code } from "./support/codes.js";
import { startIdentity, type Harness } from "./support/runtime.js";
import { redisUrl, testServiceSecret } from "./support/env.js";
import { insertOrg } from "./support/orgs.js";

const secret = testServiceSecret();
let h: Harness;
let admin: { token: string; id: string; orgId: string };

test.before(async () => {
  h = await startIdentity({
    AIRLOCK_SERVICE_SECRET: secret,
    // The limit under test below; the default is sized for the audit log's batches.
    AIRLOCK_RPC_MAX_MESSAGE_BYTES: String(4 * 1024 * 1024),
  });
  const res = await h.client().bootstrap({ orgName: "acme", adminEmail: "Admin@Acme.test" });
  admin = { token: res.token, id: res.admin!.id, orgId: res.org!.id };
});
test.after.always(async () => h?.close());

test("bootstrap made an org-admin whose token authenticates; a second bootstrap is refused", async (t) => {
  const me = await h.client(admin.token).authenticate({ token: admin.token });
  t.is(me.principal?.id, admin.id);
  t.is(me.principal?.email, "admin@acme.test");
  t.deepEqual(me.principal?.roles, ["org-admin"]);
  t.is(me.principal?.org?.name, "acme");
  t.deepEqual(me.scopes, ["admin", "audit", "llm"]);
  t.is(
    await code(h.client().bootstrap({ orgName: "other", adminEmail: "x@y.test" })),
    Code.FailedPrecondition,
  );
});

test("bootstrap input is validated with clear errors", async (t) => {
  const err = await t.throwsAsync(
    h.client().bootstrap({ orgName: "Bad Name", adminEmail: "a@b.test" }),
  );
  t.is(ConnectError.from(err).code, Code.InvalidArgument);
  t.regex(ConnectError.from(err).rawMessage, /org name/);
  t.is(
    await code(h.client().bootstrap({ orgName: "fine", adminEmail: "not-an-email" })),
    Code.InvalidArgument,
  );
});

test("CreateToken returns the secret once; ListTokens and the database never hold it", async (t) => {
  const created = await h
    .client(admin.token)
    .createToken({ name: "laptop", scopes: ["llm"], ttl: durationFromMs(3_600_000) });
  const parts = parseToken(created.token)!;
  t.truthy(parts);
  t.is(created.tokenInfo?.prefix, `alk_${parts.id}`);
  t.deepEqual(created.tokenInfo?.scopes, ["llm"]);
  const listed = await h.client(admin.token).listTokens({});
  const text = JSON.stringify(listed, (_k, v) => (typeof v === "bigint" ? String(v) : v));
  t.true(text.includes(parts.id));
  t.false(text.includes(parts.secret));
  const db = new pg.Client({ connectionString: h.databaseUrl });
  await db.connect();
  const rows = await db.query(
    "SELECT row_to_json(t)::text AS r FROM identity.tokens t WHERE id = $1",
    [parts.id],
  );
  await db.end();
  t.false(rows.rows[0].r.includes(parts.secret));
});

test("a token authenticates until revoked, then fails with unauthenticated at once", async (t) => {
  const created = await h.client(admin.token).createToken({ name: "short" });
  t.is(
    (await h.client(created.token).authenticate({ token: created.token })).tokenId,
    created.tokenInfo!.id,
  );
  const revoked = await h.client(admin.token).revokeToken({ tokenId: created.tokenInfo!.id });
  t.truthy(revoked.tokenInfo?.revokeTime);
  t.is(
    await code(h.client(created.token).authenticate({ token: created.token })),
    Code.Unauthenticated,
  );
  t.is(await code(h.client(created.token).getPrincipal({})), Code.Unauthenticated);
  const again = await h.client(admin.token).revokeToken({ tokenId: created.tokenInfo!.id });
  t.deepEqual(
    again.tokenInfo?.revokeTime,
    revoked.tokenInfo?.revokeTime,
    "revoking twice changes nothing",
  );
});

test("malformed, unknown, wrong-secret, expired and revoked tokens all get the same unauthenticated answer", async (t) => {
  const service = new ServiceCredentials(secret, "proxy").issue("identity");
  const asService = h.client(service);
  const good = await h.client(admin.token).createToken({ name: "victim" });
  const goodParts = parseToken(good.token)!;
  await asService.authenticate({ token: good.token }); // now cached: the cache path must refuse a wrong secret too
  const wrongSecret = formatToken(goodParts.id, mintToken().text.slice(20, 52));
  const expired = await h.client(admin.token).createToken({ name: "old" });
  const db = new pg.Client({ connectionString: h.databaseUrl });
  await db.connect();
  await db.query(
    "UPDATE identity.tokens SET expires_at = now() - interval '1 second' WHERE id = $1",
    [expired.tokenInfo!.id],
  );
  await db.end();
  const revoked = await h.client(admin.token).createToken({ name: "gone" });
  await h.client(admin.token).revokeToken({ tokenId: revoked.tokenInfo!.id });
  const bad = {
    malformed: "alk_not-a-token",
    empty: "",
    unknown: mintToken().text,
    wrongSecret,
    expired: expired.token,
    revoked: revoked.token,
  };
  const messages = new Set<string>();
  for (const [name, token] of Object.entries(bad)) {
    const err = await t.throwsAsync(asService.authenticate({ token }), undefined, name);
    t.is(ConnectError.from(err).code, Code.Unauthenticated, name);
    messages.add(ConnectError.from(err).rawMessage);
  }
  t.is(messages.size, 1, "no hint which kind of bad token it was");
});

test("calls without a credential, or with a forged service credential, are unauthenticated", async (t) => {
  t.is(await code(h.client().authenticate({ token: admin.token })), Code.Unauthenticated);
  t.is(await code(h.client().listTokens({})), Code.Unauthenticated);
  const forged = new ServiceCredentials("x".repeat(40), "proxy").issue("identity");
  t.is(await code(h.client(forged).authenticate({ token: admin.token })), Code.Unauthenticated);
  const wrongAudience = new ServiceCredentials(secret, "proxy").issue("audit");
  t.is(
    await code(h.client(wrongAudience).authenticate({ token: admin.token })),
    Code.Unauthenticated,
  );
  t.is(await code(h.client("Basic abc").getPrincipal({})), Code.Unauthenticated);
});

test("a service may authenticate any token; a principal only its own", async (t) => {
  const other = await h.client(admin.token).createToken({ name: "other" });
  const service = new ServiceCredentials(secret, "proxy").issue("identity");
  t.is((await h.client(service).authenticate({ token: other.token })).principal?.id, admin.id);
  t.is(
    await code(h.client(admin.token).authenticate({ token: other.token })),
    Code.PermissionDenied,
  );
});

test("an agent owned by a user: bound to workspace and repositories, a token with llm only, no management", async (t) => {
  const agent = (
    await h.client(admin.token).createPrincipal({
      kind: PrincipalKind.AGENT,
      displayName: "review-bot",
      workspace: "payments",
      repositories: ["github.com/acme/*"],
    })
  ).principal!;
  t.regex(agent.id, /^agt_/);
  t.is(agent.ownerId, admin.id);
  t.deepEqual(agent.roles, ["agent"]);
  const token = await h.client(admin.token).createToken({ principalId: agent.id, name: "ci" });
  t.deepEqual(token.tokenInfo?.scopes, ["llm"]);
  const who = await h.client(token.token).authenticate({ token: token.token });
  t.is(who.principal?.kind, PrincipalKind.AGENT);
  t.is(who.principal?.workspace, "payments");
  t.deepEqual(who.principal?.repositories, ["github.com/acme/*"]);
  t.is(await code(h.client(token.token).createToken({})), Code.PermissionDenied);
  t.is(
    await code(
      h.client(token.token).createPrincipal({ kind: PrincipalKind.AGENT, displayName: "x" }),
    ),
    Code.PermissionDenied,
  );
});

test("users come from sign-in, not from CreatePrincipal", async (t) => {
  t.is(
    await code(
      h.client(admin.token).createPrincipal({ kind: PrincipalKind.USER, displayName: "u" }),
    ),
    Code.InvalidArgument,
  );
});

test("org isolation: another org's admin can neither see nor touch this org's principals and tokens", async (t) => {
  const other = await insertOrg(h.databaseUrl, "globex");
  const them = h.client(other.token);
  const mine = await h.client(admin.token).createToken({ name: "mine" });
  t.is(await code(them.getPrincipal({ principalId: admin.id })), Code.NotFound);
  t.is(await code(them.listTokens({ principalId: admin.id })), Code.NotFound);
  t.is(await code(them.revokeToken({ tokenId: mine.tokenInfo!.id })), Code.NotFound);
  t.is(await code(them.createToken({ principalId: admin.id })), Code.NotFound);
  t.is(
    await code(
      them.createPrincipal({ kind: PrincipalKind.AGENT, displayName: "x", ownerId: admin.id }),
    ),
    Code.NotFound,
  );
  t.is(
    (await h.client(mine.token).authenticate({ token: mine.token })).principal?.id,
    admin.id,
    "still works",
  );
});

test("token requests are validated: lifetime, scopes, names, cursors", async (t) => {
  const c = h.client(admin.token);
  t.is(await code(c.createToken({ ttl: durationFromMs(1000 * 86_400_000) })), Code.InvalidArgument);
  t.is(await code(c.createToken({ scopes: ["root"] })), Code.InvalidArgument);
  t.is(await code(c.createToken({ principalId: "nobody" })), Code.InvalidArgument);
  t.is(await code(c.listTokens({ pageToken: "garbage" })), Code.InvalidArgument);
  t.is(await code(c.listTokens({ pageSize: 5000 })), Code.InvalidArgument);
  t.is(await code(c.revokeToken({ tokenId: "x" })), Code.InvalidArgument);
  t.is(await code(c.revokeToken({ tokenId: "0000000000000000" })), Code.NotFound);
});

test("ListTokens pages newest first without repeats", async (t) => {
  const agent = (
    await h.client(admin.token).createPrincipal({ kind: PrincipalKind.AGENT, displayName: "pager" })
  ).principal!;
  for (let i = 0; i < 5; i++)
    await h.client(admin.token).createToken({ principalId: agent.id, name: `t${i}` });
  const names: string[] = [];
  let pageToken = "";
  let pages = 0;
  do {
    const page = await h
      .client(admin.token)
      .listTokens({ principalId: agent.id, pageSize: 2, pageToken });
    names.push(...page.tokens.map((tk) => tk.name));
    pageToken = page.nextPageToken;
    pages++;
  } while (pageToken);
  t.deepEqual(names, ["t4", "t3", "t2", "t1", "t0"]);
  t.is(pages, 3);
});

test("a request body over the limit is refused", async (t) => {
  const c = createClient(
    IdentityService,
    createConnectTransport({ baseUrl: h.runtime.server.url, httpVersion: "2" }),
  );
  t.is(
    await code(c.bootstrap({ orgName: "x".repeat(5 * 1024 * 1024), adminEmail: "a@b.test" })),
    Code.ResourceExhausted,
  );
});

test("every identity change is kept for the audit log, without secrets", async (t) => {
  const created = await h.client(admin.token).createToken({ name: "audited" });
  await h.client(admin.token).revokeToken({ tokenId: created.tokenInfo!.id });
  const db = new pg.Client({ connectionString: h.databaseUrl });
  await db.connect();
  const { rows } = await db.query<{
    kind: string;
    action: string;
    subject: string;
    actor: string;
    org_id: string;
    attributes: unknown;
  }>(
    "SELECT kind, action, subject, actor, org_id, attributes FROM identity.audit_outbox ORDER BY occurred_at",
  );
  await db.end();
  const kinds = rows.map((r) => `${r.kind}/${r.action}`);
  t.true(kinds.includes("identity.org/created"));
  t.true(kinds.includes("identity.principal/created"));
  const forToken = rows
    .filter((r) => r.subject === created.tokenInfo!.id)
    .map((r) => `${r.kind}/${r.action}/${r.actor}`);
  t.deepEqual(forToken, [
    `identity.token/created/${admin.id}`,
    `identity.token/revoked/${admin.id}`,
  ]);
  t.false(JSON.stringify(rows).includes(parseToken(created.token)!.secret));
});

test("RevokeToken publishes the token id on Redis for in-process caches to drop", async (t) => {
  const subscriber = new RedisCache(redisUrl);
  t.teardown(() => subscriber.close());
  const heard: string[] = [];
  const unsubscribe = await subscriber.subscribe(revocationChannel, (id) => heard.push(id));
  const created = await h.client(admin.token).createToken({ name: "published" });
  await h.client(admin.token).revokeToken({ tokenId: created.tokenInfo!.id });
  for (let i = 0; i < 100 && !heard.includes(created.tokenInfo!.id); i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  t.true(heard.includes(created.tokenInfo!.id));
  t.false(
    heard.some((m) => m.includes(parseToken(created.token)!.secret)),
    "only the id is published",
  );
  await unsubscribe();
});
