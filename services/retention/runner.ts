import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import {
  PurgeCutoffsSchema,
  PurgeRequestSchema,
  type AuditService,
} from "../../gen/airlock/audit/v1/audit_pb.js";
import type { IdentityService } from "../../gen/airlock/identity/v1/identity_pb.js";
import { busy, DomainError } from "../kit/errors.js";
import { newId } from "../kit/ids.js";
import type { Logger } from "../kit/log.js";
import type { RetentionConfig } from "./config.js";
import type { RetentionMetrics } from "./metrics.js";
import type { PgRetentionStore } from "./pg-store.js";
import {
  purgePlan,
  receiptKinds,
  receipts,
  runReport,
  type Cutoffs,
  type PurgePlan,
} from "./plan.js";
import type { Run } from "./records.js";
import type { RunLock } from "./run-lock.js";

export interface RunnerDeps {
  store: PgRetentionStore;
  lock: RunLock;
  audit: Client<typeof AuditService>;
  identity: Client<typeof IdentityService>;
  config: RetentionConfig;
  log: Logger;
  metrics: RetentionMetrics;
  now?: () => number;
}

export interface RunRequest {
  dryRun: boolean;
  trigger: Run["trigger"];
  /** A principal id, or `service:retention` for the schedule. */
  requestedBy: string;
  /** Wait for a run in progress instead of failing with ABORTED. */
  wait: boolean;
  signal?: AbortSignal;
}

/**
 * Carries out retention runs: under the run lock, it turns the rules and
 * holds into one audit Purge (which spans every org, since a day's
 * partition holds them all) and one identity PurgeTokens, then stores the
 * report and the receipts in one transaction. Every step is idempotent, so
 * a run that dies midway is finished by the next one, which names it.
 */
export class Runner {
  private readonly now: () => number;

  constructor(private readonly deps: RunnerDeps) {
    this.now = deps.now ?? Date.now;
  }

  async run(request: RunRequest): Promise<Run> {
    const { lock, store } = this.deps;
    const release = request.wait
      ? await lock.acquire(request.signal ?? new AbortController().signal)
      : await lock.tryAcquire();
    if (!release) {
      const running = await store.runningRun();
      throw busy(
        `a retention run is in progress${running ? ` (${running.id}, started ${running.startedAt.toISOString()})` : ""}; try again when it ends, or ask to wait`,
      );
    }
    try {
      return await this.runLocked(request);
    } finally {
      await release();
    }
  }

  private async runLocked(request: RunRequest): Promise<Run> {
    const { store, config, log } = this.deps;
    const resumes = request.dryRun ? [] : await store.interruptStaleRuns();
    const started = this.now();
    const id = newId("run");
    await store.startRun({
      id,
      dryRun: request.dryRun,
      trigger: request.trigger,
      requestedBy: request.requestedBy,
      startedAt: new Date(started),
    });
    log.info(
      { runId: id, dryRun: request.dryRun, trigger: request.trigger },
      "retention run started",
    );
    try {
      const plan = purgePlan({
        nowMs: started,
        defaults: config.defaults,
        stored: await store.rules(),
        holds: await store.holds(undefined, false),
      });
      const purged = await this.deps.audit.purge(purgeRequest(id, plan, request.dryRun), {
        signal: request.signal,
      });
      const tokens = await this.deps.identity.purgeTokens(
        { before: timestampFromMs(started - config.tokenGraceMs), dryRun: request.dryRun },
        { signal: request.signal },
      );
      const report = runReport(
        plan,
        {
          orgs: purged.orgs.map((o) => ({
            orgId: o.orgId,
            purged: {
              content: Number(o.contentPurged),
              metadata: Number(o.metadataPurged),
              receipts: Number(o.receiptsPurged),
            },
            held: o.held.map((h) => ({ holdId: h.holdId, records: Number(h.records) })),
          })),
          partitionsTruncated: purged.partitionsTruncated,
          tokens: tokens.orgs.map((t) => ({ orgId: t.orgId, tokens: Number(t.tokens) })),
        },
        resumes,
      );
      const ended = this.now();
      const run = await store.finishRun(
        id,
        { status: "succeeded", endedAt: new Date(ended), report },
        request.dryRun
          ? []
          : receipts(
              {
                id,
                trigger: request.trigger,
                requestedBy: request.requestedBy,
                durationMs: ended - started,
              },
              report,
            ),
      );
      log.info(
        { runId: id, dryRun: request.dryRun, orgs: report.orgs.length, ms: ended - started },
        "retention run finished",
      );
      this.deps.metrics.finished(run);
      return run;
    } catch (err) {
      log.error({ err, runId: id }, "retention run failed; the next run finishes the job");
      await store
        .finishRun(
          id,
          { status: "failed", endedAt: new Date(this.now()), error: (err as Error).message },
          [],
        )
        .then((failed) => this.deps.metrics.finished(failed))
        .catch(() => undefined);
      throw err;
    }
  }

  /**
   * Runs every `intervalMs`, counted from the last run's start (so restarts
   * do not put runs off forever). A run already in progress elsewhere is
   * skipped, not waited for. Returns a function that stops the schedule.
   */
  async schedule(): Promise<() => void> {
    const { config, store, log } = this.deps;
    if (config.intervalMs === 0) return () => undefined;
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const tick = () => {
      void this.run({
        dryRun: false,
        trigger: "schedule",
        requestedBy: "service:retention",
        wait: false,
      })
        .catch((err: unknown) => {
          if (!(err instanceof DomainError && err.kind === "aborted"))
            log.error({ err }, "scheduled retention run failed");
        })
        .finally(() => {
          if (!stopped) timer = setTimeout(tick, config.intervalMs).unref();
        });
    };
    const [last] = await store.listRuns(1);
    const due = last
      ? last.startedAt.getTime() + config.intervalMs - this.now()
      : config.intervalMs;
    timer = setTimeout(tick, Math.min(Math.max(due, 10_000), config.intervalMs)).unref();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }
}

const at = (ms: number | undefined) => (ms === undefined ? undefined : timestampFromMs(ms));

const toCutoffs = (orgId: string, c: Cutoffs) =>
  create(PurgeCutoffsSchema, {
    orgId,
    contentBefore: at(c.content),
    metadataBefore: at(c.metadata),
    receiptsBefore: at(c.receipts),
  });

function purgeRequest(runId: string, plan: PurgePlan, dryRun: boolean) {
  return create(PurgeRequestSchema, {
    runId,
    orgs: [...plan.orgs].map(([orgId, o]) => toCutoffs(orgId, o.cutoffs)),
    defaults: toCutoffs("", plan.defaults.cutoffs),
    receiptKinds,
    holds: plan.holds.map((h) => ({
      holdId: h.id,
      orgId: h.orgId,
      principalIds: h.principalIds,
      since: at(h.since?.getTime()),
      until: at(h.until?.getTime()),
    })),
    dryRun,
  });
}
