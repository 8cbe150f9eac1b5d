import type { ConnectRouter } from "@connectrpc/connect";
import { AuditService } from "../../gen/airlock/audit/v1/audit_pb.js";
import { auditService, type AuditServiceDeps } from "./audit-service.js";

export const auditRoutes = (deps: AuditServiceDeps) => (router: ConnectRouter) =>
  router.service(AuditService, auditService(deps));
