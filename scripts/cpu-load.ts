/**
 * A process that only burns CPU, in short bursts at a steady pace, for the
 * proxy benchmark's control: the bare pass-through is timed beside it
 * burning the share of a core that audit and Postgres used while the proxy
 * was timed, in 50 bursts a second (the shipper lingers 20 ms between
 * Appends; 20 bursts a second gave the same tail). It tells how much of the
 * proxy's tail any background work of that size causes on the machine,
 * whatever the work is.
 *
 *   node --import tsx scripts/cpu-load.ts --share 0.25 --hz 50
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { share: { type: "string" }, hz: { type: "string", default: "50" } },
});
const share = Number(values.share);
const hz = Number(values.hz);
if (!(share >= 0 && share < 1)) throw new Error("--share: a fraction of one core, from 0 to 1");
if (!(hz > 0 && hz <= 1000)) throw new Error("--hz: bursts per second, from 1 to 1000");

const periodMs = 1000 / hz;
const burstMs = share * periodMs;
setInterval(() => {
  const until = performance.now() + burstMs;
  while (performance.now() < until);
}, periodMs);
console.log(`cpu-load running: ${burstMs.toFixed(2)} ms every ${periodMs.toFixed(1)} ms`);
