import { IdentityService, PrincipalKind } from "../../gen/airlock/identity/v1/identity_pb.js";
import { PolicyService } from "../../gen/airlock/policy/v1/policy_pb.js";
import { starterBundle } from "../../services/cli/policy-commands.js";
import { connectTo } from "./clients.js";

/**
 * What most proxy tests start from: the first org (bootstrap), a policy
 * (the starter bundle and `extraRules`), and an agent with a token.
 */
export async function orgWithAgent(
  rpcUrl: string,
  options: { org: string; extraRules?: string; workspace?: string; scopes?: string[] },
) {
  const boot = await connectTo(IdentityService, rpcUrl).bootstrap({
    orgName: options.org,
    adminEmail: `admin@${options.org}.test`,
  });
  const orgId = boot.org!.id;
  await connectTo(PolicyService, rpcUrl, boot.token).applyBundle({
    orgId,
    bundle: `${starterBundle()}\n${options.extraRules ?? ""}\n`,
  });
  const asAdmin = connectTo(IdentityService, rpcUrl, boot.token);
  const agent = (
    await asAdmin.createPrincipal({
      kind: PrincipalKind.AGENT,
      displayName: `${options.org}-agent`,
      workspace: options.workspace ?? "",
    })
  ).principal!;
  const token = await asAdmin.createToken({ principalId: agent.id, scopes: options.scopes ?? [] });
  return {
    adminToken: boot.token,
    orgId,
    agentId: agent.id,
    agentToken: token.token,
    agentTokenId: token.tokenInfo!.id,
  };
}
