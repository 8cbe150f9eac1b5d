import type { Logger } from "./log.js";

/**
 * Ordered clean-up: what was started last stops first (server before pools,
 * pools before the embedded database). Each step runs even when an earlier one
 * failed; failures are logged.
 */
export class Lifecycle {
  private readonly steps: { name: string; run: () => Promise<void> | void }[] = [];
  private stopping: Promise<void> | undefined;

  constructor(private readonly log: Logger) {}

  onStop(name: string, run: () => Promise<void> | void): void {
    this.steps.push({ name, run });
  }

  stop(): Promise<void> {
    this.stopping ??= this.runSteps();
    return this.stopping;
  }

  private async runSteps(): Promise<void> {
    for (const step of [...this.steps].reverse()) {
      try {
        this.log.debug({ step: step.name }, "stopping");
        await step.run();
      } catch (err) {
        this.log.error({ step: step.name, err: (err as Error).message }, "shutdown step failed");
      }
    }
  }
}
