import { DeliveryError, parseRetryAfter } from "./sink.js";

/** Where and how an HTTP sink posts. `headers` may hold a credential: never log them. */
export interface HttpTarget {
  url: URL;
  headers: { readonly [name: string]: string };
  timeoutMs: number;
}

/**
 * POSTs one body and resolves on a 2xx answer. Anything else throws a
 * DeliveryError carrying the receiver's Retry-After, if it sent one. The
 * error names the status and host only: a webhook's path or query may hold
 * a secret.
 */
export async function post(target: HttpTarget, body: string, signal: AbortSignal): Promise<void> {
  let response: Response;
  try {
    response = await fetch(target.url, {
      method: "POST",
      headers: { "content-type": "application/json", ...target.headers },
      body,
      signal: AbortSignal.any([signal, AbortSignal.timeout(target.timeoutMs)]),
    });
  } catch (err) {
    const cause = (err as Error & { cause?: Error }).cause;
    throw new DeliveryError(
      `POST to ${target.url.host} failed: ${cause?.message ?? (err as Error).message}`,
    );
  }
  // Read the answer to the end so the connection can be reused.
  await response.arrayBuffer().catch(() => undefined);
  if (response.ok) return;
  throw new DeliveryError(
    `POST to ${target.url.host} answered ${response.status}`,
    parseRetryAfter(response.headers.get("retry-after"), Date.now()),
  );
}
