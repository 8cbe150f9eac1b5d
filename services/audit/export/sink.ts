import type { OcsfEvent } from "./ocsf.js";

/**
 * A receiver of exported events. `send` makes one attempt to deliver a batch
 * in order and resolves only once the receiver has taken all of it; it
 * throws when any part may not have arrived. Retrying is the exporter's job,
 * so that no sink can skip a record.
 */
export interface Sink {
  send(events: readonly OcsfEvent[], signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** A failed delivery, with the receiver's own word on when to try again. */
export class DeliveryError extends Error {
  override name = "DeliveryError";

  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** An HTTP `Retry-After` value (seconds, or an HTTP date) in milliseconds from `now`. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Events as JSON lines, each ending in a newline. */
export function jsonLines(events: readonly OcsfEvent[]): string {
  return events.map((e) => JSON.stringify(e) + "\n").join("");
}
