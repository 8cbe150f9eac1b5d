import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type MessageShape,
} from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import {
  AuthenticateRequestSchema,
  AuthenticateResponseSchema,
  IdentityService,
} from "../gen/airlock/identity/v1/identity_pb.js";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
} from "../gen/grpc/health/v1/health_pb.js";
import { startIdentity, type Harness } from "./support/runtime.js";

const run = promisify(execFile);
let h: Harness;
let token: string;
let principalId: string;

test.before(async () => {
  h = await startIdentity();
  const res = await h.client().bootstrap({ orgName: "interop", adminEmail: "admin@interop.test" });
  token = res.token;
  principalId = res.admin!.id;
});
test.after.always(async () => h?.close());

/** A unary call from a plain @grpc/grpc-js client, with protobuf-es doing the (de)serialisation. */
function grpcUnary<I extends DescMessage, O extends DescMessage>(
  path: string,
  input: I,
  output: O,
  request: MessageShape<I>,
  metadata: Record<string, string> = {},
): Promise<MessageShape<O>> {
  const Client = grpc.makeGenericClientConstructor(
    {
      call: {
        path,
        requestStream: false,
        responseStream: false,
        requestSerialize: (m: MessageShape<I>) => Buffer.from(toBinary(input, m)),
        requestDeserialize: (b: Buffer) => fromBinary(input, b),
        responseSerialize: (m: MessageShape<O>) => Buffer.from(toBinary(output, m)),
        responseDeserialize: (b: Buffer) => fromBinary(output, b),
      },
    },
    "Interop",
  );
  const client = new Client(new URL(h.runtime.server.url).host, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, (...a: unknown[]) => void>).call!(
      request,
      md,
      (err: Error | null, res: MessageShape<O>) => {
        client.close();
        if (err) reject(err);
        else resolve(res);
      },
    );
  });
}

test("Authenticate over gRPC from a @grpc/grpc-js client", async (t) => {
  const res = await grpcUnary(
    "/airlock.identity.v1.IdentityService/Authenticate",
    AuthenticateRequestSchema,
    AuthenticateResponseSchema,
    create(AuthenticateRequestSchema, { token }),
    { authorization: `Bearer ${token}` },
  );
  t.is(res.principal?.id, principalId);
});

test("gRPC without a credential gets UNAUTHENTICATED", async (t) => {
  const err = await t.throwsAsync(
    grpcUnary(
      "/airlock.identity.v1.IdentityService/Authenticate",
      AuthenticateRequestSchema,
      AuthenticateResponseSchema,
      create(AuthenticateRequestSchema, { token }),
    ),
  );
  t.is((err as unknown as { code: number }).code, grpc.status.UNAUTHENTICATED);
});

test("grpc.health.v1 answers SERVING to a grpc-js client, for the server and for the identity service", async (t) => {
  for (const service of ["", "airlock.identity.v1.IdentityService"]) {
    const res = await grpcUnary(
      "/grpc.health.v1.Health/Check",
      HealthCheckRequestSchema,
      HealthCheckResponseSchema,
      create(HealthCheckRequestSchema, { service }),
    );
    t.is(res.status, Status.SERVING, service || "(server)");
  }
});

test("Authenticate over Connect with JSON, as curl sends it (HTTP/2 prior knowledge and HTTP/1.1)", async (t) => {
  const url = `${h.runtime.server.url}/airlock.identity.v1.IdentityService/Authenticate`;
  for (const version of ["--http2-prior-knowledge", "--http1.1"]) {
    const { stdout } = await run("curl", [
      "-sS",
      version,
      "-H",
      "Content-Type: application/json",
      "-H",
      `Authorization: Bearer ${token}`,
      "-d",
      JSON.stringify({ token }),
      url,
    ]);
    const body = JSON.parse(stdout) as { principal: { id: string; org: { name: string } } };
    t.is(body.principal.id, principalId, version);
    t.is(body.principal.org.name, "interop");
  }
});

test("Authenticate over gRPC-Web", async (t) => {
  const client = createClient(
    IdentityService,
    createGrpcWebTransport({
      baseUrl: h.runtime.server.url,
      httpVersion: "1.1",
      interceptors: [
        (next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req)),
      ],
    }),
  );
  t.is((await client.authenticate({ token })).principal?.id, principalId);
});

test("in-process: another service's call goes through the in-memory transport, signed with a service credential", async (t) => {
  const client = createClient(IdentityService, h.runtime.peer("identity"));
  const res = await client.authenticate({ token });
  t.is(res.principal?.id, principalId);
  t.true(
    h.logs.lines.some((l) => l.includes('"caller":"service:identity"')),
    "the callee saw a service caller",
  );
});

test("/healthz, /readyz and /metrics answer plain HTTP/1.1", async (t) => {
  const base = h.runtime.server.url;
  t.is((await fetch(`${base}/healthz`)).status, 200);
  const ready = await fetch(`${base}/readyz`);
  t.is(ready.status, 200);
  t.deepEqual(await ready.json(), { ready: true, checks: { postgres: "ok", redis: "ok" } });
  const metrics = await (await fetch(`${base}/metrics`)).text();
  t.regex(
    metrics,
    /airlock_rpc_requests_total\{method="airlock.identity.v1.IdentityService\/Bootstrap",code="ok"\} 1/,
  );
  t.regex(metrics, /process_cpu_seconds_total/);
});
