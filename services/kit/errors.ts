import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "./log.js";

/** What went wrong, in terms a client can act on. Each maps to one Connect code. */
export type ErrorKind =
  | "unauthenticated"
  | "permission_denied"
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "aborted"
  | "resource_exhausted"
  | "unavailable";

const codes: Record<ErrorKind, Code> = {
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  aborted: Code.Aborted,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
};

/**
 * An error raised by domain code. `message` is for the client; `cause` is
 * for the log and never leaves the process.
 */
export class DomainError extends Error {
  override name = "DomainError";
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Shorthand constructors, so domain code reads `throw invalid("…")`. */
export const unauthenticated = (message = "invalid or missing credential") =>
  new DomainError("unauthenticated", message);
export const denied = (message: string) => new DomainError("permission_denied", message);
export const invalid = (message: string) => new DomainError("invalid_argument", message);
export const notFound = (message: string) => new DomainError("not_found", message);
export const conflict = (message: string) => new DomainError("already_exists", message);
export const precondition = (message: string) => new DomainError("failed_precondition", message);
/** The call collided with concurrent work; trying again later may succeed. */
export const busy = (message: string) => new DomainError("aborted", message);
export const unavailable = (message: string, cause?: unknown) =>
  new DomainError("unavailable", message, { cause });

/** A code as the Connect protocol writes it: `failed_precondition`, not `FailedPrecondition`. */
export function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/** The one mapping from anything thrown to what a client sees. */
function toConnectError(err: unknown, log: Logger): ConnectError {
  if (err instanceof DomainError) return new ConnectError(err.message, codes[err.kind]);
  if (err instanceof ConnectError) return err;
  // Unexpected: keep the detail in the log, give the client nothing to mine.
  log.error({ err: describe(err) }, "internal error");
  return new ConnectError("internal error", Code.Internal);
}

function describe(err: unknown): { type: string; message: string; stack?: string } {
  if (err instanceof Error) return { type: err.name, message: err.message, stack: err.stack };
  return { type: typeof err, message: String(err) };
}

/** Server interceptor applying {@link toConnectError} to every RPC. */
export function errorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      const res = await next(req);
      return res.stream ? { ...res, message: mapStreamErrors(res.message, log) } : res;
    } catch (err) {
      throw toConnectError(err, log);
    }
  };
}

async function* mapStreamErrors<T>(messages: AsyncIterable<T>, log: Logger): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    throw toConnectError(err, log);
  }
}
