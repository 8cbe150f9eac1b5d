import type { Writable } from "node:stream";
import type { OcsfEvent } from "./ocsf.js";
import { DeliveryError, jsonLines, type Sink } from "./sink.js";

/**
 * JSON lines to a stream: stdout, for a log collector that reads the
 * container's output. A batch counts as delivered when the stream has
 * flushed it to its destination (its write callback ran), which also keeps a
 * slow reader from filling memory. Service logs share stdout; export lines
 * are told apart by their `class_uid`.
 */
export class StreamSink implements Sink {
  constructor(private readonly stream: Writable) {}

  send(events: readonly OcsfEvent[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.stream.write(jsonLines(events), (err) =>
        err ? reject(new DeliveryError(`write failed: ${err.message}`)) : resolve(),
      );
    });
  }

  async close(): Promise<void> {
    // The stream is the process's; it outlives the sink.
  }
}
