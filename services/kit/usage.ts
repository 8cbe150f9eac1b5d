import { create } from "@bufbuild/protobuf";
import { UsageSchema, type Usage as UsageProto } from "../../gen/airlock/audit/v1/audit_pb.js";

/** Tokens as the providers count them; what the proxy collects and audit stores. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
}

/** The audit contract's form of token counts. */
export function usageToProto(u: Usage): UsageProto {
  return create(UsageSchema, {
    inputTokens: BigInt(u.inputTokens),
    outputTokens: BigInt(u.outputTokens),
    cacheReadTokens: BigInt(u.cacheReadTokens),
    cacheWriteTokens: BigInt(u.cacheWriteTokens),
    reasoningTokens: BigInt(u.reasoningTokens),
  });
}
