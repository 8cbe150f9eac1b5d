import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { RetentionService } from "../../gen/airlock/retention/v1/retention_pb.js";
import { callerKey } from "../kit/caller.js";
import { invalid } from "../kit/errors.js";
import {
  dataClassFromProto,
  holdToProto,
  parseRunsPageToken,
  ruleToProto,
  runToProto,
  runsPageToken,
} from "./convert.js";
import type { Retention } from "./retention.js";

const maxRunsPage = 200;

/** Maps retention's RPCs onto the domain; authentication happened in the interceptor. */
export function retentionService(retention: Retention): ServiceImpl<typeof RetentionService> {
  const caller = (ctx: HandlerContext) => ctx.values.get(callerKey);
  return {
    async setRule(req, ctx) {
      const rule = await retention.setRule(
        caller(ctx),
        req.orgId,
        dataClassFromProto(req.dataClass),
        req.duration.trim(),
      );
      return { rule: ruleToProto(rule) };
    },

    async listRules(req, ctx) {
      return { rules: (await retention.listRules(caller(ctx), req.orgId)).map(ruleToProto) };
    },

    async placeHold(req, ctx) {
      const hold = await retention.placeHold(caller(ctx), req.orgId, {
        principalIds: req.principalIds,
        since: req.since && timestampDate(req.since),
        until: req.until && timestampDate(req.until),
        caseId: req.caseId,
        reason: req.reason,
      });
      return { hold: holdToProto(hold) };
    },

    async releaseHold(req, ctx) {
      if (!req.holdId) throw invalid("hold_id: required");
      const hold = await retention.releaseHold(caller(ctx), req.orgId, req.holdId, req.reason);
      return { hold: holdToProto(hold) };
    },

    async listHolds(req, ctx) {
      const holds = await retention.listHolds(caller(ctx), req.orgId, req.includeReleased);
      return { holds: holds.map(holdToProto) };
    },

    async run(req, ctx) {
      const run = await retention.run(caller(ctx), req.dryRun, req.wait, ctx.signal);
      return { run: runToProto(run) };
    },

    async listRuns(req, ctx) {
      const pageSize = req.pageSize === 0 ? 20 : req.pageSize;
      if (pageSize < 1 || pageSize > maxRunsPage)
        throw invalid(`page_size: expected 1 to ${maxRunsPage}`);
      const after = req.pageToken ? parseRunsPageToken(req.pageToken) : undefined;
      const runs = await retention.listRuns(caller(ctx), pageSize + 1, after);
      const page = runs.slice(0, pageSize);
      return {
        runs: page.map(runToProto),
        nextPageToken: runs.length > pageSize ? runsPageToken(page.at(-1)!) : "",
      };
    },

    async getRun(req, ctx) {
      if (!req.runId) throw invalid("run_id: required");
      return { run: runToProto(await retention.getRun(caller(ctx), req.runId)) };
    },
  };
}
