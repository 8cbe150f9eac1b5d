import type { ConnectRouter } from "@connectrpc/connect";
import { RetentionService } from "../../gen/airlock/retention/v1/retention_pb.js";
import type { Retention } from "./retention.js";
import { retentionService } from "./retention-service.js";

export const retentionRoutes = (retention: Retention) => (router: ConnectRouter) =>
  router.service(RetentionService, retentionService(retention));
