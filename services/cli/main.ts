import { parseArgs } from "node:util";
import { ConfigError } from "../kit/config.js";
import { serviceNames } from "../kit/runtime-config.js";
import { describeFailure, type ClientOptions } from "./client.js";
import * as audit from "./audit-commands.js";
import * as auditChain from "./audit-chain-commands.js";
import * as identity from "./identity-commands.js";
import * as policy from "./policy-commands.js";
import * as retention from "./retention-commands.js";
import { Output, UsageError } from "./output.js";
import { serve } from "./serve.js";

const usage = `usage: airlock <command> [options]

  serve [SERVICE...]          run the control plane (all services, or the named ones)
  bootstrap --org ORG --admin EMAIL
                              create the first org and its admin; prints the admin token once
  login --id-token JWT|-      exchange an ID token from your IdP for a session token
  whoami                      the principal behind your token
  principal get ID            a principal of your org
  token create [--principal ID] [--name N] [--scope S]... [--ttl 30d]
  token list [--principal ID] [--all]
  token revoke TOKEN_ID
  agent create NAME [--owner ID] [--workspace W] [--repo PATTERN]... [--role R]...
  service-account create NAME [--role R]...
  policy apply FILE [--dry-run] [--org ORG_ID]
                              replace the org's rules with a bundle (see deploy/policies/)
  policy check SUBJECT OBJECT ACTION --org ORG_ID
                              the decision and the rule that made it (exit 3 on deny)
  policy list [--org ORG_ID]  the org's rules
  audit query [--since 24h|ISO] [--until …] [--actor ID] [--kind K]... [--provider P]
      [--model M] [--workspace W] [--repository R] [--session S] [--tool T] [--status S]
      [--limit 50] [--content]
                              the org's audit records, newest first (--json: one per line)
  audit get ID [--content]    one record
  audit tail [--from-start] [--cursor C]
                              records as they are stored, until Ctrl-C
  audit usage --since 7d [--until …]
                              tokens and calls by day, principal and model
  audit verify [--from SEQ] [--to SEQ]
                              the server checks the hash chain (exit 1 when broken)
  audit export --out FILE [--from SEQ] [--to SEQ]
                              records, checkpoints and signing keys as JSON lines
  audit verify --file FILE --public-key KEY.pem...
                              checks an export offline against the keys you pin only
  audit keys                  the public keys that sign checkpoints (PEM, to pin)
  retention rules [--org ORG_ID]
                              how long each data class is kept (defaults marked)
  retention set ORG_ID CLASS DURATION
                              CLASS content, metadata or receipts; DURATION 30d or forever
  retention hold place --case CASE_ID --reason TEXT [--principal ID,ID…] [--since T] [--until T]
  retention hold release HOLD_ID --reason TEXT
  retention holds [--all]     holds in force (--all: released ones too)
  retention run [--dry-run] [--wait]
                              purge what is expired now, or report what would be
  retention runs [RUN_ID] [--limit 20]
                              recent runs, or one run's report

common options:
  --url URL      server (AIRLOCK_URL, default http://127.0.0.1:4001); services running
                 apart are found at AIRLOCK_<SERVICE>_URL unless --url is given
  --token TOKEN  credential (AIRLOCK_TOKEN)
  --json         machine-readable output

serve options (each mirrors an environment variable, see README):
  --rpc-addr, --data-dir, --database-url, --redis-url, --service-secret, --log-level`;

const options = {
  url: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  org: { type: "string" },
  admin: { type: "string" },
  "id-token": { type: "string" },
  principal: { type: "string" },
  name: { type: "string" },
  scope: { type: "string", multiple: true },
  ttl: { type: "string" },
  all: { type: "boolean" },
  owner: { type: "string" },
  workspace: { type: "string" },
  repo: { type: "string", multiple: true },
  role: { type: "string", multiple: true },
  "rpc-addr": { type: "string" },
  "data-dir": { type: "string" },
  "database-url": { type: "string" },
  "redis-url": { type: "string" },
  "service-secret": { type: "string" },
  "log-level": { type: "string" },
  "dry-run": { type: "boolean" },
  since: { type: "string" },
  until: { type: "string" },
  actor: { type: "string" },
  kind: { type: "string", multiple: true },
  provider: { type: "string" },
  model: { type: "string" },
  repository: { type: "string" },
  session: { type: "string" },
  tool: { type: "string" },
  status: { type: "string" },
  limit: { type: "string" },
  content: { type: "boolean" },
  "from-start": { type: "boolean" },
  cursor: { type: "string" },
  from: { type: "string" },
  to: { type: "string" },
  out: { type: "string" },
  file: { type: "string" },
  "public-key": { type: "string", multiple: true },
  case: { type: "string" },
  reason: { type: "string" },
  wait: { type: "boolean" },
} as const;

async function main(argv: string[], client: ClientOptions): Promise<void> {
  const { values: flags, positionals } = parseArgs({
    args: argv,
    options,
    allowPositionals: true,
    strict: true,
  });
  const [command, sub, ...rest] = positionals;
  if (flags.help || !command) {
    console.log(usage);
    return;
  }
  if (flags.url) {
    // An explicit --url means that server, for every service.
    client.url = flags.url;
    client.serviceUrls = {};
  }
  client.token = flags.token ?? client.token;
  const out = new Output(flags.json ?? false);
  const needsToken = () => {
    if (!client.token) throw new UsageError("no credential: pass --token or set AIRLOCK_TOKEN");
  };
  switch (`${command} ${sub ?? ""}`.trim()) {
    case "serve":
    case `serve ${sub}`:
      return serve(positionals.slice(1), {
        "rpc-addr": flags["rpc-addr"],
        "data-dir": flags["data-dir"],
        "database-url": flags["database-url"],
        "redis-url": flags["redis-url"],
        "service-secret": flags["service-secret"],
        "log-level": flags["log-level"],
      });
    case "bootstrap":
      return identity.bootstrap(client, out, flags);
    case "login":
      return identity.login(client, out, flags);
    case "whoami":
      needsToken();
      return identity.whoami(client, out);
    case "principal get":
      needsToken();
      if (!rest[0]) throw new UsageError("usage: airlock principal get ID");
      return identity.whoami(client, out, rest[0]);
    case "token create":
      needsToken();
      return identity.tokenCreate(client, out, flags);
    case "token list":
      needsToken();
      return identity.tokenList(client, out, flags);
    case "token revoke":
      needsToken();
      return identity.tokenRevoke(client, out, rest[0]);
    case "agent create":
      needsToken();
      return identity.principalCreate(client, out, "agent", rest[0], flags);
    case "service-account create":
      needsToken();
      return identity.principalCreate(client, out, "service-account", rest[0], flags);
    case "policy apply":
      needsToken();
      return policy.policyApply(client, out, rest[0], flags);
    case "policy check":
      needsToken();
      return policy.policyCheck(client, out, rest, flags);
    case "policy list":
      needsToken();
      return policy.policyList(client, out, flags);
    case "audit query":
      needsToken();
      return audit.auditQuery(client, out, flags);
    case "audit get":
      needsToken();
      return audit.auditGet(client, out, rest[0], flags);
    case "audit tail":
      needsToken();
      return audit.auditTail(client, flags);
    case "audit usage":
      needsToken();
      return audit.auditUsage(client, out, flags);
    case "audit verify":
      // With --file nothing is asked of a server: the export is checked here.
      if (flags.file !== undefined) return auditChain.auditVerifyFile(out, flags);
      needsToken();
      return auditChain.auditVerify(client, out, flags);
    case "audit export":
      needsToken();
      return auditChain.auditExport(client, out, flags);
    case "audit keys":
      needsToken();
      return audit.auditKeys(client, out);
    case "retention rules":
      needsToken();
      return retention.retentionRules(client, out, flags);
    case "retention set":
      needsToken();
      return retention.retentionSet(client, out, rest);
    case "retention hold":
      needsToken();
      return retention.retentionHold(client, out, rest, flags);
    case "retention holds":
      needsToken();
      return retention.retentionHolds(client, out, flags);
    case "retention run":
      needsToken();
      return retention.retentionRun(client, out, flags);
    case "retention runs":
      needsToken();
      return retention.retentionRuns(client, out, rest[0], flags);
    default:
      throw new UsageError(`unknown command: ${positionals.join(" ")}\n\n${usage}`);
  }
}

const client: ClientOptions = {
  url: process.env.AIRLOCK_URL ?? "http://127.0.0.1:4001",
  token: process.env.AIRLOCK_TOKEN,
  serviceUrls: Object.fromEntries(
    serviceNames.flatMap((name) => {
      const url = process.env[`AIRLOCK_${name.toUpperCase()}_URL`];
      return url ? [[name, url]] : [];
    }),
  ),
};
main(process.argv.slice(2), client).catch((err: unknown) => {
  const code = (err as { code?: unknown }).code;
  if (
    err instanceof UsageError ||
    err instanceof ConfigError ||
    (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS"))
  ) {
    console.error(`airlock: ${(err as Error).message}`);
    process.exit(2);
  }
  console.error(
    `airlock: ${err instanceof Error && err.name === "ConnectError" ? describeFailure(err, client.url) : (err as Error).message}`,
  );
  process.exit(1);
});
