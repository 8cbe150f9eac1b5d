/**
 * A stretch of a chain that retention deleted (positions fromSeq..toSeq).
 * The chain resumes after it from `lastHash`, the hash of the record that
 * was at toSeq; `runId` names the retention run whose receipt accounts for it.
 */
export interface PurgedRange {
  chainId: string;
  fromSeq: number;
  toSeq: number;
  lastHash: string;
  runId: string;
}

/**
 * Records and purged ranges of one stretch of a chain, merged in position
 * order, so a verifier meets each range before the record that links to it.
 */
export function inChainOrder<R, P>(
  records: readonly R[],
  ranges: readonly P[],
  seqOf: (record: R) => number,
  fromOf: (range: P) => number,
): ({ record: R } | { purged: P })[] {
  const out: ({ record: R } | { purged: P })[] = [];
  let next = 0;
  for (const record of records) {
    while (next < ranges.length && fromOf(ranges[next]!) < seqOf(record))
      out.push({ purged: ranges[next++]! });
    out.push({ record });
  }
  while (next < ranges.length) out.push({ purged: ranges[next++]! });
  return out;
}
