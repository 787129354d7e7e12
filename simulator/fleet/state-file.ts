import { rename, rm, writeFile } from 'node:fs/promises';
import { ScsError } from '../../src/errors.ts';

/**
 * Keeps a JSON file up to date with the fleet: rewritten atomically (write a temp file in the same
 * directory, then rename over the target, so a reader never sees half a file) and debounced (many
 * state changes within `debounceMs` make one write; a steady stream of changes still writes at
 * least every `maxWaitMs`). Writes never overlap.
 */
export class StateFileWriter {
  readonly #file: string;
  readonly #debounceMs: number;
  readonly #maxWaitMs: number;
  readonly #build: () => unknown;
  #timer: NodeJS.Timeout | undefined;
  #firstPendingAt: number | undefined;
  #writing: Promise<void> = Promise.resolve();
  #writes = 0;
  #lastError: unknown;

  constructor(file: string, build: () => unknown, opts: { debounceMs?: number; maxWaitMs?: number } = {}) {
    this.#file = file;
    this.#build = build;
    this.#debounceMs = opts.debounceMs ?? 250;
    this.#maxWaitMs = opts.maxWaitMs ?? 2000;
  }

  get file(): string {
    return this.#file;
  }

  /** Completed writes so far. */
  get writes(): number {
    return this.#writes;
  }

  /** The last write failure, if any (the fleet reports it; it does not stop the fleet). */
  get lastError(): unknown {
    return this.#lastError;
  }

  /** Something changed: write soon. */
  changed(): void {
    const now = performance.now();
    this.#firstPendingAt ??= now;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const wait = Math.max(0, Math.min(this.#debounceMs, this.#firstPendingAt + this.#maxWaitMs - now));
    this.#timer = setTimeout(() => void this.flush(), wait);
  }

  /** Writes now (after any write in progress) and resolves when the file is in place. */
  flush(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#firstPendingAt = undefined;
    this.#writing = this.#writing.then(() => this.#write());
    return this.#writing;
  }

  async #write(): Promise<void> {
    const tmp = `${this.#file}.${process.pid}.tmp`;
    try {
      await writeFile(tmp, `${JSON.stringify(this.#build(), null, 1)}\n`);
      await rename(tmp, this.#file);
      this.#writes++;
      this.#lastError = undefined;
    } catch (cause) {
      this.#lastError = new ScsError('SCS_FILE_IO', `cannot write state file ${this.#file}`, { cause });
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }

  /** Stops the timer without writing. */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
