/**
 * A process that only burns CPU, in 50 short bursts a second, for the proxy
 * benchmark's control: the bare pass-through is timed beside it burning the
 * share of a core that audit and Postgres used while the proxy was timed
 * (the shipper lingers 20 ms between Appends; 20 bursts a second gave the
 * same tail). It tells how much of the proxy's tail any background work of
 * that size causes on the machine, whatever the work is.
 *
 *   node --import tsx scripts/cpu-load.ts --share 0.25
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { share: { type: "string" } } });
const share = Number(values.share);
if (!(share >= 0 && share <= 1)) throw new Error("--share: a fraction of one core, from 0 to 1");

const periodMs = 20;
const burstMs = share * periodMs;
setInterval(() => {
  const until = performance.now() + burstMs;
  while (performance.now() < until);
}, periodMs);
console.log(`cpu-load running: ${burstMs.toFixed(2)} ms every ${periodMs} ms`);
