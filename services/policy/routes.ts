import type { ConnectRouter } from "@connectrpc/connect";
import { PolicyService } from "../../gen/airlock/policy/v1/policy_pb.js";
import type { Policy } from "./policy.js";
import { policyService } from "./policy-service.js";

export const policyRoutes = (policy: Policy) => (router: ConnectRouter) =>
  router.service(PolicyService, policyService(policy));
