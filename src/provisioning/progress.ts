import type { JobRow } from '../store/provisioning/types.ts';
import type { Store } from '../store/store.ts';
import type { StepName } from './plan.ts';

/** A step that finished, and how long it took (retries included). */
export interface StepDone {
  readonly step: StepName;
  readonly ms: number;
}

/** What a write carries of the progress: the steps not yet written and the last step done. */
export interface ProgressSnapshot {
  readonly steps: readonly StepDone[];
  readonly lastStep: StepName | undefined;
}

/**
 * Step progress of one job, written with the job's next write instead of a write of its own
 * (docs/performance.md, "Provisioning hot path"). A job writes anyway before anything the
 * store must know precedes reaching the device (escrow before SetAdminAclEntryEx, the renewal
 * PSK before SetTLSPSK, "commit sent" before CommitChanges) and when it ends; the steps done
 * since the last write ride along: one `job.step` audit entry each, in order and before that
 * write's own entries, and the job's `step` column. Nothing resumes from the step column (an
 * attempt that did not reach "commit sent" starts over from step 1, its settings lost with the
 * session), so a step written a little later changes no recovery; a crash loses the audit entries
 * of the steps done since the last write, whose effects on the device were lost with it.
 */
export class StepProgress {
  #pending: StepDone[] = [];
  #lastStep: StepName | undefined;

  done(step: StepName, ms: number): void {
    this.#pending.push({ step, ms });
    this.#lastStep = step;
  }

  /** Taken before a write: the write function may run twice (group commit retries a failed batch one write at a time). */
  snapshot(): ProgressSnapshot {
    return { steps: [...this.#pending], lastStep: this.#lastStep };
  }

  /** The write carrying `snapshot` committed: its steps are written. */
  written(snapshot: ProgressSnapshot): void {
    this.#pending.splice(0, snapshot.steps.length);
  }
}

/** The job.step audit entries of a snapshot, appended inside the caller's transaction. */
export async function writeStepEntries(
  tx: Store,
  job: JobRow,
  snapshot: ProgressSnapshot,
  actor: string,
): Promise<void> {
  for (const s of snapshot.steps) {
    await tx.audit.append({
      actor,
      action: 'job.step',
      detail: { job: job.id, uuid: job.deviceUuid, step: s.step, ms: s.ms },
    });
  }
}
