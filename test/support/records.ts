import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { LlmRequestRecord, LlmResponseRecord } from "../../services/proxy/records.js";

/** The proxy's records so far, as it wrote them under the data directory. */
async function readRecords(dataDir: string): Promise<(LlmRequestRecord | LlmResponseRecord)[]> {
  const text = await readFile(join(dataDir, "records", "records.jsonl"), "utf8").catch(() => "");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LlmRequestRecord | LlmResponseRecord);
}

/** The request and response records of one call, waiting briefly for the response record. */
export async function recordsOf(dataDir: string, predicate: (r: LlmRequestRecord) => boolean) {
  for (let i = 0; i < 100; i++) {
    const all = await readRecords(dataDir);
    const request = all
      .filter((r): r is LlmRequestRecord => r.kind === "llm.request")
      .filter(predicate)
      .at(-1);
    const response =
      request &&
      all.find((r): r is LlmResponseRecord => r.kind === "llm.response" && r.id === request.id);
    if (request && response) return { request, response };
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("no matching records");
}
