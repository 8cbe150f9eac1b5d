import type { Record } from "../../../gen/airlock/audit/v1/audit_pb.js";
import { recordToProto } from "../convert.js";
import type { PgAuditReader } from "../pg-reader.js";
import type { ExportCursor, ExportSource } from "./source.js";

/**
 * The audit log as exporters read it: each chain in position order, which
 * is commit order (positions are handed out under the chain head's lock), so
 * a cursor of last positions never skips a record that committed late.
 */
export class PgExportSource implements ExportSource {
  constructor(private readonly reader: PgAuditReader) {}

  async readAfter(
    cursor: ExportCursor,
    limit: number,
    options: { content: boolean },
  ): Promise<Record[]> {
    const out: Record[] = [];
    for (const [chainId, head] of await this.reader.heads()) {
      const after = cursor[chainId] ?? 0;
      if (head <= after) continue;
      const records = await this.reader.chainAfter(chainId, after, limit - out.length);
      const contents = options.content ? await this.reader.contents(records) : undefined;
      out.push(
        ...records.map((r) =>
          recordToProto(r, contents ? (contents.get(r.id) ?? null) : undefined),
        ),
      );
      if (out.length >= limit) break;
    }
    return out;
  }

  async heads(): Promise<ExportCursor> {
    return Object.fromEntries(await this.reader.heads());
  }
}
