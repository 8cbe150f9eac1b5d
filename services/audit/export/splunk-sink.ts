import { post, type HttpTarget } from "./http-post.js";
import type { OcsfEvent } from "./ocsf.js";
import type { Sink } from "./sink.js";

/** A Splunk HTTP Event Collector endpoint and what to stamp on each event. */
export interface SplunkOptions {
  /** The collector's event endpoint, e.g. https://splunk:8088/services/collector/event. */
  url: URL;
  token: string;
  /** The `host` field of each event: this machine, unless configured. */
  host: string;
  /** The index to write to; the token's default when unset. */
  index: string | undefined;
  timeoutMs: number;
}

/**
 * Splunk HEC: one envelope per event, concatenated with newlines in one
 * POST (HEC's batch format), `Authorization: Splunk <token>`. Any 2xx is the
 * acknowledgement; HEC indexer acknowledgement (channels and ack polling) is
 * not used.
 */
export class SplunkSink implements Sink {
  private readonly target: HttpTarget;

  constructor(private readonly options: SplunkOptions) {
    this.target = {
      url: options.url,
      headers: { authorization: `Splunk ${options.token}` },
      timeoutMs: options.timeoutMs,
    };
  }

  send(events: readonly OcsfEvent[], signal: AbortSignal): Promise<void> {
    const body = events.map((event) => JSON.stringify(this.envelope(event))).join("\n");
    return post(this.target, body, signal);
  }

  async close(): Promise<void> {
    // fetch keeps no connection that needs closing.
  }

  private envelope(event: OcsfEvent) {
    return {
      // HEC takes epoch seconds, with milliseconds as decimals.
      time: event.time / 1000,
      host: this.options.host,
      source: "airlock",
      sourcetype: "ocsf:api_activity",
      index: this.options.index,
      event,
    };
  }
}
