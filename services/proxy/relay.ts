import type { ServerResponse } from "node:http";
import type { HttpResponse } from "../kit/http-listener.js";
import { describe, forwardedResponseHeader, type EndpointSpec } from "./calls.js";
import { collectorFor } from "./collect.js";
import type { Outcome } from "./outcome.js";
import { streamErrorEvent } from "./provider-errors.js";
import { SseParser } from "./sse.js";
import type { Upstream } from "./upstream.js";

/**
 * Streams an upstream answer to the client as it arrives, collecting what
 * it says on the way, and tells how the call ended.
 */
export async function relay(
  spec: EndpointSpec,
  answer: Awaited<ReturnType<Upstream["send"]>>,
  res: HttpResponse,
  started: number,
  signal: AbortSignal,
): Promise<Outcome> {
  const contentType = String(answer.headers["content-type"] ?? "");
  const streaming = contentType.startsWith("text/event-stream");
  const collector = collectorFor(spec.endpoint);
  const parser = streaming ? new SseParser() : undefined;
  const json: Buffer[] = [];
  res.statusCode = answer.statusCode;
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value !== undefined && forwardedResponseHeader.test(name)) res.setHeader(name, value);
  }
  // A whole answer keeps its length, as the bytes go on unchanged: chunked, it would take one more
  // write (a system call, and a wake-up of the client) after its last byte, only to end it. A
  // stream stays chunked: it may end with an error event of Airlock's own.
  const length = answer.headers["content-length"];
  if (!streaming && typeof length === "string") res.setHeader("content-length", length);
  let ttfb = -1;
  // Node sends a response's writes at the end of the tick: what the proxy learns from a chunk is
  // worked out in a later turn of the loop, so that it never holds the chunk back.
  const unparsed: Buffer[] = [];
  let parsing = false;
  const parsePending = () => {
    parsing = false;
    for (const chunk of unparsed.splice(0)) parser!.push(chunk, (e) => collector.event(e));
  };
  try {
    // Each chunk goes to the client as it arrives; the upstream is paused while the client is slow.
    await new Promise<void>((resolve, reject) => {
      const body = answer.body;
      const out = res as ServerResponse;
      body.on("data", (chunk: Buffer) => {
        if (ttfb < 0) ttfb = performance.now() - started;
        if (!out.write(chunk)) {
          body.pause();
          out.once("drain", () => body.resume());
        }
        if (!parser) return void json.push(chunk);
        unparsed.push(chunk);
        if (!parsing) {
          parsing = true;
          setImmediate(parsePending);
        }
      });
      body.once("end", resolve);
      body.once("error", reject);
    });
  } catch (err) {
    if (parser) parsePending();
    if (signal.aborted) {
      return {
        status: "aborted",
        httpStatus: answer.statusCode,
        ttfbMs: ttfb,
        collected: collector.result(),
        error: "client went away",
      };
    }
    const message = `the upstream stream failed: ${describe(err)}`;
    if (streaming) res.end(streamErrorEvent(spec.api, spec.endpoint, message));
    else res.destroy();
    return {
      status: "error",
      httpStatus: answer.statusCode,
      ttfbMs: ttfb,
      collected: collector.result(),
      error: message,
    };
  }
  res.end();
  await new Promise((resolve) => setImmediate(resolve));
  if (parser) parsePending();
  else {
    try {
      collector.json(JSON.parse(Buffer.concat(json).toString("utf8")));
    } catch {
      // Not JSON: the bytes went to the client as they were; there is nothing to collect.
    }
  }
  const collected = collector.result();
  const ok = answer.statusCode < 400 && !collected.error;
  return {
    status: ok ? "ok" : "error",
    httpStatus: answer.statusCode,
    ttfbMs: ttfb,
    collected,
    error: collected.error || (ok ? "" : Buffer.concat(json).toString("utf8").slice(0, 2000)),
  };
}
