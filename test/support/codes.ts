import { Code, ConnectError } from "@connectrpc/connect";

/** The Connect code a call ends with, or "ok". */
export async function code(promise: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await promise;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}
