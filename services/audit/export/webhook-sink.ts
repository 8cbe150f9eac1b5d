import { post, type HttpTarget } from "./http-post.js";
import type { OcsfEvent } from "./ocsf.js";
import type { Sink } from "./sink.js";

/** A generic webhook and the secret it expects. */
export interface WebhookOptions {
  url: URL;
  /** Sent in `secretHeader`; no credential is sent when unset. */
  secret: string | undefined;
  /** `authorization` sends `Bearer <secret>`; any other header carries the secret as is. */
  secretHeader: string;
  timeoutMs: number;
}

/** A JSON array of events per POST; any 2xx is the acknowledgement. */
export class WebhookSink implements Sink {
  private readonly target: HttpTarget;

  constructor(options: WebhookOptions) {
    const header = options.secretHeader.toLowerCase();
    const headers: { [name: string]: string } = {};
    if (options.secret !== undefined) {
      headers[header] = header === "authorization" ? `Bearer ${options.secret}` : options.secret;
    }
    this.target = { url: options.url, headers, timeoutMs: options.timeoutMs };
  }

  send(events: readonly OcsfEvent[], signal: AbortSignal): Promise<void> {
    return post(this.target, JSON.stringify(events), signal);
  }

  async close(): Promise<void> {
    // fetch keeps no connection that needs closing.
  }
}
