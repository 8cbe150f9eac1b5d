import { clone, create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { randomUUID } from "node:crypto";
import { RecordSchema, type Record } from "../../gen/airlock/audit/v1/audit_pb.js";
import type { ExportCursor, ExportSource } from "../../services/audit/export/source.js";

/**
 * The audit log in memory, as the store serves it to exporters: each org
 * one chain, positions handed out in order. A test double of the real
 * store's ExportSource.
 */
export class MemoryExportSource implements ExportSource {
  private readonly chains = new Map<string, Record[]>();

  /** Stores `count` LLM response records for `orgId`, with content; returns their ids. */
  append(orgId: string, count: number): string[] {
    const chain = this.chains.get(orgId) ?? [];
    this.chains.set(orgId, chain);
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const id = `rec-${randomUUID()}`;
      chain.push(
        create(RecordSchema, {
          id,
          kind: "llm.response",
          time: timestampFromDate(new Date()),
          orgId,
          actor: "agent-1",
          actorKind: "agent",
          action: "invoke",
          status: "ok",
          provider: "anthropic",
          model: "claude-sonnet-4",
          usage: { inputTokens: 10n, outputTokens: 5n },
          content: { text: `prompt of ${id}` },
          contentSha256: "ab".repeat(32),
          chainId: orgId,
          seq: BigInt(chain.length + 1),
        }),
      );
      ids.push(id);
    }
    return ids;
  }

  async readAfter(
    cursor: ExportCursor,
    limit: number,
    options: { content: boolean },
  ): Promise<Record[]> {
    const out: Record[] = [];
    for (const [chainId, chain] of this.chains) {
      for (const r of chain) {
        if (out.length === limit) return out;
        if (Number(r.seq) <= (cursor[chainId] ?? 0)) continue;
        const copy = clone(RecordSchema, r);
        if (!options.content) copy.content = undefined;
        out.push(copy);
      }
    }
    return out;
  }

  async heads(): Promise<ExportCursor> {
    return Object.fromEntries([...this.chains].map(([id, chain]) => [id, chain.length]));
  }
}
