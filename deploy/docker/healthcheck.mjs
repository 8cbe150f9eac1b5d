// The image's HEALTHCHECK: GET a path (default /healthz) on this container's
// RPC port, found in AIRLOCK_RPC_ADDR like the service finds it. Exit 0 on 200.
const addr = process.env.AIRLOCK_RPC_ADDR ?? "127.0.0.1:4001";
const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(addr);
if (!match) {
  console.error(`AIRLOCK_RPC_ADDR=${JSON.stringify(addr)}: expected host:port`);
  process.exit(2);
}
// A wildcard listen address is reached on loopback.
const host = { "0.0.0.0": "127.0.0.1", "[::]": "[::1]" }[match[1]] ?? match[1];
const path = process.argv[2] ?? "/healthz";
try {
  const res = await fetch(`http://${host}:${match[2]}${path}`, {
    signal: AbortSignal.timeout(2500),
  });
  process.exit(res.status === 200 ? 0 : 1);
} catch (err) {
  console.error(`${path}: ${err.message}`);
  process.exit(1);
}
