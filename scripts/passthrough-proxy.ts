/**
 * The least a proxy in Node.js can do, for the proxy benchmark's baseline:
 * each request's body is read and parsed as JSON, sent to the upstream over
 * a keep-alive undici pool (as Airlock's proxy sends it), and the answer
 * streamed back chunk by chunk. No authentication, policy or recording, so
 * what it adds to a call is the cost of one more process and hop on the
 * machine, which Airlock's proxy cannot go below.
 *
 *   node --import tsx scripts/passthrough-proxy.ts --upstream http://127.0.0.1:4010
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { Pool } from "undici";

const { values } = parseArgs({ options: { upstream: { type: "string" } } });
if (!values.upstream) throw new Error("--upstream: the fake upstream's URL is required");
const upstream = new Pool(values.upstream, { connections: 256, keepAliveTimeout: 60_000 });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.once("end", () => {
    const body = Buffer.concat(chunks);
    JSON.parse(body.toString("utf8"));
    upstream
      .request({
        method: "POST",
        path: req.url ?? "/",
        headers: { "content-type": "application/json" },
        body,
      })
      .then((answer) => {
        res.statusCode = answer.statusCode;
        res.setHeader("content-type", String(answer.headers["content-type"] ?? ""));
        answer.body.on("data", (chunk: Buffer) => res.write(chunk));
        answer.body.once("end", () => res.end());
        answer.body.once("error", () => res.destroy());
      })
      .catch(() => {
        res.statusCode = 502;
        res.end();
      });
  });
});
server.listen(0, "127.0.0.1", () => {
  console.log(
    `passthrough listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`,
  );
});
