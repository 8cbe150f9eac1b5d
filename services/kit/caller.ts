import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Principal } from "../../gen/airlock/identity/v1/identity_pb.js";
import { denied, unauthenticated } from "./errors.js";

/** Who is calling, set by the authentication interceptor for every RPC. */
export type Caller =
  | { kind: "anonymous" }
  | { kind: "service"; service: string }
  | { kind: "principal"; principal: Principal; tokenId: string; scopes: readonly string[] };

export type PrincipalCaller = Extract<Caller, { kind: "principal" }>;

export const callerKey = createContextKey<Caller>({ kind: "anonymous" }, { description: "caller" });

/** The caller as an authenticated principal; services and anonymous callers are refused. */
export function principalCaller(ctx: HandlerContext): PrincipalCaller {
  const caller = ctx.values.get(callerKey);
  if (caller.kind === "principal") return caller;
  if (caller.kind === "service")
    throw denied("this call acts for a principal; call it with a user or agent token");
  throw unauthenticated();
}

/**
 * Whether the caller is a process hosting the named service. A process
 * hosting several (all-in-one) signs as `identity+policy+…`.
 */
export function isService(caller: Caller, name: string): boolean {
  return caller.kind === "service" && caller.service.split("+").includes(name);
}

/** A short, secret-free name of the caller for logs and audit records. */
export function describeCaller(caller: Caller): string {
  switch (caller.kind) {
    case "anonymous":
      return "anonymous";
    case "service":
      return `service:${caller.service}`;
    case "principal":
      return caller.principal.id;
  }
}
