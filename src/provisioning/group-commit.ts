import type { Store } from '../store/store.ts';

/** Writes joined into one transaction at most. */
const MAX_BATCH = 256;

interface Op {
  readonly fn: (tx: Store) => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit for the runner's writes (job progress, escrow, PSK moves, audit entries): the
 * writes queued while a transaction is running go together into the next one. With hundreds
 * of jobs at once this turns thousands of small transactions (each a BEGIN IMMEDIATE, a
 * COMMIT with its fsync, and an audit-head read and update) into a few, without weakening
 * anything: each caller's promise resolves only after the transaction holding its write has
 * committed, so "escrowed before sent" and "commit sent before CommitChanges" still hold.
 *
 * If any write of a batch fails, the batch is rolled back and every write runs again alone,
 * so one failure reaches only its own caller. A write must use `tx`, never queue another.
 */
export class GroupCommit {
  readonly #store: Store;
  #queue: Op[] = [];
  #flushing = false;

  constructor(store: Store) {
    this.#store = store;
  }

  run<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#flushing) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#flushing = true;
    try {
      // Let the writes queued in this turn of the event loop join the first batch.
      await new Promise<void>((r) => setImmediate(r));
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_BATCH);
        let results: unknown[] | undefined;
        try {
          results = await this.#store.transaction(async (tx) => {
            const out: unknown[] = [];
            for (const op of batch) out.push(await op.fn(tx));
            return out;
          });
        } catch {
          results = undefined;
        }
        if (results !== undefined) {
          batch.forEach((op, i) => op.resolve(results[i]));
          continue;
        }
        for (const op of batch) {
          try {
            op.resolve(await this.#store.transaction(op.fn));
          } catch (error) {
            op.reject(error);
          }
        }
      }
    } finally {
      this.#flushing = false;
    }
  }
}
