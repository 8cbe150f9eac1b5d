import { readFileSync } from "node:fs";
import { toJson } from "@bufbuild/protobuf";
import {
  ApplyBundleResponseSchema,
  CheckResponseSchema,
  ListRulesResponseSchema,
  PolicyService,
  type Rule,
} from "../../gen/airlock/policy/v1/policy_pb.js";
import { connect, type ClientOptions } from "./client.js";
import { UsageError, type Output } from "./output.js";

/** `airlock policy apply FILE [--dry-run]`: replaces the org's rules with the bundle's. */
export async function policyApply(
  opts: ClientOptions,
  out: Output,
  file: string | undefined,
  flags: { org?: string; "dry-run"?: boolean },
) {
  if (!file) throw new UsageError("usage: airlock policy apply FILE [--dry-run] [--org ORG_ID]");
  let bundle: string;
  try {
    bundle = readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const res = await connect(PolicyService, opts).applyBundle({
    orgId: flags.org ?? "",
    bundle,
    dryRun: flags["dry-run"] ?? false,
  });
  out.result(toJson(ApplyBundleResponseSchema, res), () =>
    [
      ...res.removed.map((r) => `- ${r.text}`),
      ...res.added.map((r) => `+ ${r.text}`),
      `${res.applied ? "applied" : "dry run, nothing changed"}: ${res.added.length} added, ${res.removed.length} removed; bundle sha256 ${res.bundleSha256}; policy version ${res.policyVersion}`,
    ].join("\n"),
  );
}

/** `airlock policy check SUBJECT OBJECT ACTION --org ORG`: the decision and the rule that made it. */
export async function policyCheck(
  opts: ClientOptions,
  out: Output,
  args: string[],
  flags: { org?: string },
) {
  const [subject, object, action] = args;
  if (!subject || !object || !action || !flags.org) {
    throw new UsageError("usage: airlock policy check SUBJECT OBJECT ACTION --org ORG_ID");
  }
  const res = await connect(PolicyService, opts).check({
    subject,
    object,
    action,
    orgId: flags.org,
  });
  out.result(
    toJson(CheckResponseSchema, res),
    () => `${res.allowed ? "allow" : "deny"}: ${res.reason}`,
  );
  if (!res.allowed) process.exitCode = 3;
}

/** `airlock policy list`: the org's rules as a bundle. */
export async function policyList(opts: ClientOptions, out: Output, flags: { org?: string }) {
  const res = await connect(PolicyService, opts).listRules({ orgId: flags.org ?? "" });
  out.result(toJson(ListRulesResponseSchema, res), () =>
    [
      `# policy version ${res.policyVersion}, ${res.rules.length} rules`,
      ...res.rules.map((r: Rule) => r.text),
    ].join("\n"),
  );
}

/** The starter bundle, applied by `airlock bootstrap`. */
export function starterBundle(): string {
  return readFileSync(new URL("../../deploy/policies/starter.csv", import.meta.url), "utf8");
}
