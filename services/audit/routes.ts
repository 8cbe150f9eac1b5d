import type { ConnectRouter } from "@connectrpc/connect";
import { auditService, AuditServiceAsServed, type AuditServiceDeps } from "./audit-service.js";

export const auditRoutes = (deps: AuditServiceDeps) => (router: ConnectRouter) =>
  router.service(AuditServiceAsServed, auditService(deps));
