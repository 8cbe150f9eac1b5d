import { toJson } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  AuditService,
  ListSigningKeysResponseSchema,
  RecordSchema,
  TailResponseSchema,
  UsageReportResponseSchema,
  type Record as AuditRecord,
} from "../../gen/airlock/audit/v1/audit_pb.js";
import { parseDuration } from "../kit/config.js";
import { connect, type ClientOptions } from "./client.js";
import { UsageError, type Output } from "./output.js";

/** The server's largest page; --limit above it takes several pages. */
const maxPage = 1000;

/** `airlock audit query`: the org's records, newest first, as a table or JSON lines. */
export async function auditQuery(
  opts: ClientOptions,
  out: Output,
  flags: {
    since?: string;
    until?: string;
    actor?: string;
    kind?: string[];
    provider?: string;
    model?: string;
    workspace?: string;
    repository?: string;
    session?: string;
    tool?: string;
    status?: string;
    limit?: string;
    content?: boolean;
    json?: boolean;
  },
) {
  const limit = flags.limit === undefined ? 50 : positiveInt("--limit", flags.limit);
  const client = connect(AuditService, opts);
  const request = {
    since: timeFlag("--since", flags.since),
    until: timeFlag("--until", flags.until),
    actor: flags.actor ?? "",
    kinds: flags.kind ?? [],
    provider: flags.provider ?? "",
    model: flags.model ?? "",
    workspace: flags.workspace ?? "",
    repository: flags.repository ?? "",
    sessionId: flags.session ?? "",
    toolName: flags.tool ?? "",
    status: flags.status ?? "",
    includeContent: flags.content ?? false,
  };
  const records: AuditRecord[] = [];
  let count = 0;
  let cursor = "";
  do {
    const page = await client.query({
      ...request,
      pageSize: Math.min(limit - count, maxPage),
      cursor,
    });
    count += page.records.length;
    // JSON lines go out page by page: a large --limit need not wait for the last page.
    if (flags.json) for (const r of page.records) writeJsonLine(toJson(RecordSchema, r));
    else records.push(...page.records);
    cursor = page.nextCursor;
  } while (cursor && count < limit);
  if (cursor) out.note(`more records match: raise --limit (now ${limit})`);
  if (flags.json) return;
  if (records.length === 0) return out.note("no records");
  const [header, ...lines] = table(
    ["TIME", "KIND", "ACTOR", "MODEL", "STATUS", "TOKENS", "ID"],
    records.map(row),
  );
  const body = lines.flatMap((line, i) => {
    const content = records[i]!.content;
    return content ? [line, `    content ${JSON.stringify(content)}`] : [line];
  });
  process.stdout.write([header, ...body].join("\n") + "\n");
}

/** `airlock audit get ID [--content]`: one record, field by field. */
export async function auditGet(
  opts: ClientOptions,
  out: Output,
  id: string | undefined,
  flags: { content?: boolean },
) {
  if (!id) throw new UsageError("usage: airlock audit get ID [--content]");
  const { record } = await connect(AuditService, opts).get({
    id,
    includeContent: flags.content ?? false,
  });
  if (!record) return;
  const json = toJson(RecordSchema, record);
  out.result(json, () => {
    const { content, ...fields } = json as Record<string, unknown>;
    return [
      ...Object.entries(fields).map(
        ([k, v]) => `${k}\t${typeof v === "string" ? v : JSON.stringify(v)}`,
      ),
      ...(content === undefined ? [] : ["content", JSON.stringify(content, null, 2)]),
    ].join("\n");
  });
}

/**
 * `airlock audit tail`: records as they are stored, until Ctrl-C or SIGTERM,
 * which end it with exit code 0 and the cursor to resume from.
 */
export async function auditTail(
  opts: ClientOptions,
  flags: { "from-start"?: boolean; cursor?: string; json?: boolean },
) {
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  let cursor = flags.cursor ?? "";
  try {
    const stream = connect(AuditService, opts).tail(
      { cursor, fromStart: flags["from-start"] ?? false },
      { signal: abort.signal },
    );
    for await (const item of stream) {
      cursor = item.cursor;
      if (flags.json) writeJsonLine(toJson(TailResponseSchema, item));
      else if (item.record) process.stdout.write(row(item.record).join("\t") + "\n");
    }
    throw new Error("the server ended the stream");
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    if (cursor) process.stderr.write(`resume with: airlock audit tail --cursor ${cursor}\n`);
  }
}

/** `airlock audit usage --since 7d`: tokens and calls by day, principal and model. */
export async function auditUsage(
  opts: ClientOptions,
  out: Output,
  flags: { since?: string; until?: string },
) {
  if (!flags.since) throw new UsageError("usage: airlock audit usage --since 7d|ISO [--until …]");
  const res = await connect(AuditService, opts).usageReport({
    since: timeFlag("--since", flags.since),
    until: timeFlag("--until", flags.until),
  });
  out.result(toJson(UsageReportResponseSchema, res), () => {
    if (res.rows.length === 0) return "no LLM calls in that time";
    const totals = [0n, 0n, 0n, 0n, 0n];
    const rows = res.rows.map((r) => {
      const u = r.usage;
      const counts = [
        r.requests,
        u?.inputTokens ?? 0n,
        u?.outputTokens ?? 0n,
        u?.cacheReadTokens ?? 0n,
        u?.reasoningTokens ?? 0n,
      ];
      counts.forEach((n, i) => (totals[i]! += n));
      return [r.day, r.actor, r.model, ...counts.map(String)];
    });
    return table(
      ["DAY", "ACTOR", "MODEL", "CALLS", "IN", "OUT", "CACHE READ", "REASONING"],
      [...rows, ["total", "", "", ...totals.map(String)]],
    ).join("\n");
  });
}

/**
 * `airlock audit keys`: the keys that sign checkpoints. Only the PEM goes to
 * stdout, so `airlock audit keys > audit-key.pem` pins them for
 * `airlock audit verify --file … --public-key audit-key.pem`.
 */
export async function auditKeys(opts: ClientOptions, out: Output) {
  const res = await connect(AuditService, opts).listSigningKeys({});
  out.result(toJson(ListSigningKeysResponseSchema, res), () => {
    for (const k of res.keys)
      out.note(`key ${k.keyId}, first signed ${k.createdAt ? iso(k.createdAt) : "never"}`);
    return res.keys.map((k) => k.publicKeyPem.trim()).join("\n");
  });
}

/** A time flag: a duration back from now (24h, 7d) or an ISO time. */
export function timeFlag(name: string, text: string | undefined): Timestamp | undefined {
  if (text === undefined) return undefined;
  const ago = parseDuration(text);
  if (ago !== undefined) return timestampFromMs(Date.now() - ago);
  // Date.parse takes almost anything ("1" is 2001); insist on a date first.
  const ms = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms))
    throw new UsageError(
      `${name} ${text}: expected a duration back from now like 24h or 7d, or an ISO time like 2026-01-15T12:00:00Z`,
    );
  return timestampFromMs(ms);
}

/** A whole number ≥ 1 from a flag. */
export function positiveInt(name: string, text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`${name} ${text}: expected a whole number from 1`);
  return n;
}

function row(r: AuditRecord): string[] {
  const input = r.usage?.inputTokens ?? 0n;
  const output = r.usage?.outputTokens ?? 0n;
  return [
    r.time ? iso(r.time) : "",
    r.kind,
    r.actor,
    r.model,
    r.status,
    input || output ? `${input}/${output}` : "",
    r.id,
  ];
}

/** Rows padded into columns, header first; the last column is left unpadded. */
function table(header: string[], rows: string[][]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
}

function writeJsonLine(json: unknown): void {
  process.stdout.write(JSON.stringify(json) + "\n");
}

function iso(t: Timestamp): string {
  return timestampDate(t).toISOString();
}
