import type { JobContext } from '../context.ts';
import type { StepName } from '../plan.ts';

/** One row of protocol.md §6. The runner retries it (config stepRetries) on retryable failures. */
export interface Step {
  readonly name: StepName;
  run(ctx: JobContext): Promise<void>;
}
