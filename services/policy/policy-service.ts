import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import {
  CheckResponseSchema,
  PolicyService,
  type CheckResponse,
} from "../../gen/airlock/policy/v1/policy_pb.js";
import { callerKey } from "../kit/caller.js";
import { invalid, unauthenticated } from "../kit/errors.js";
import { effectToProto, ruleFromProto, ruleToProto } from "./convert.js";
import type { CheckResult, Policy, PolicyCaller } from "./policy.js";
import { subjectsOf } from "./subjects.js";

/** Maps policy's RPCs onto the domain; authentication happened in the interceptor. */
export function policyService(policy: Policy): ServiceImpl<typeof PolicyService> {
  return {
    async check(req, ctx) {
      return checkToProto(await policy.check(caller(ctx), req));
    },

    async batchCheck(req, ctx) {
      if (req.checks.length > 100) throw invalid("checks: at most 100");
      const who = caller(ctx);
      return {
        results: (await Promise.all(req.checks.map((c) => policy.check(who, c)))).map(checkToProto),
      };
    },

    async listRules(req, ctx) {
      const listed = await policy.listRules(caller(ctx), req.orgId);
      return { rules: listed.rules.map(ruleToProto), policyVersion: listed.version };
    },

    async addRules(req, ctx) {
      const done = await policy.addRules(caller(ctx), req.orgId, req.rules.map(ruleFromProto));
      return { added: done.added.map(ruleToProto), policyVersion: done.version };
    },

    async removeRules(req, ctx) {
      const done = await policy.removeRules(caller(ctx), req.orgId, req.rules.map(ruleFromProto));
      return { removed: done.removed.map(ruleToProto), policyVersion: done.version };
    },

    async applyBundle(req, ctx) {
      if (req.bundle.length > 8 * 1024 * 1024) throw invalid("bundle: at most 8 MiB");
      const done = await policy.applyBundle(caller(ctx), req.orgId, req.bundle, req.dryRun);
      return {
        added: done.added.map(ruleToProto),
        removed: done.removed.map(ruleToProto),
        bundleSha256: done.sha256,
        applied: done.applied,
        policyVersion: done.version,
      };
    },
  };
}

function caller(ctx: HandlerContext): PolicyCaller {
  const c = ctx.values.get(callerKey);
  if (c.kind === "service") return { kind: "service", service: c.service };
  if (c.kind === "principal") {
    return {
      kind: "principal",
      id: c.principal.id,
      orgId: c.principal.org?.id ?? "",
      subjects: subjectsOf(c.principal),
      scopes: c.scopes,
    };
  }
  throw unauthenticated();
}

function checkToProto(result: CheckResult): CheckResponse {
  return create(CheckResponseSchema, {
    allowed: result.allowed,
    effect: effectToProto(result.effect),
    rule: result.rule && ruleToProto(result.rule),
    policyVersion: result.version,
    reason: result.reason,
  });
}
