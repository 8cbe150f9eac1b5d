import { create } from "@bufbuild/protobuf";
import { Effect, RuleSchema, type Rule } from "../../gen/airlock/policy/v1/policy_pb.js";
import { invalid } from "../kit/errors.js";
import { parseRule, ruleId, ruleText, type PolicyRule } from "./rules.js";

export function ruleToProto(rule: PolicyRule): Rule {
  return create(RuleSchema, {
    id: ruleId(rule),
    text: ruleText(rule),
    rule:
      rule.kind === "p"
        ? {
            case: "permission",
            value: {
              subject: rule.subject,
              object: rule.object,
              action: rule.action,
              effect: rule.effect === "allow" ? Effect.ALLOW : Effect.DENY,
            },
          }
        : { case: "roleLink", value: { member: rule.member, role: rule.role } },
  });
}

/** A rule from a request, given as text or structured; validated like a bundle line. */
export function ruleFromProto(rule: Rule, index: number): PolicyRule {
  let text: string;
  if (rule.text) text = rule.text;
  else if (rule.rule.case === "permission") {
    const p = rule.rule.value;
    text = `p, ${p.subject}, ${p.object}, ${p.action}, ${p.effect === Effect.ALLOW ? "allow" : p.effect === Effect.DENY ? "deny" : ""}`;
  } else if (rule.rule.case === "roleLink")
    text = `g, ${rule.rule.value.member}, ${rule.rule.value.role}`;
  else throw invalid(`rules[${index}]: empty`);
  try {
    return parseRule(text);
  } catch (err) {
    throw invalid(`rules[${index}]: ${(err as Error).message}`);
  }
}

export function effectToProto(effect: "allow" | "deny" | "none"): Effect {
  return effect === "allow" ? Effect.ALLOW : effect === "deny" ? Effect.DENY : Effect.UNSPECIFIED;
}
