import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * One batch for the worker. `seal`: `data` holds the plaintexts back to back, then the
 * associated data (UTF-8) back to back, `lengths` the plaintext lengths. `open`: `data` holds
 * the sealed blobs back to back, then the associated data, `lengths` the blob lengths.
 */
export interface SealRequest {
  readonly id: number;
  readonly op: 'seal' | 'open';
  readonly data: ArrayBuffer;
  readonly lengths: Uint32Array;
  readonly aadLengths: Uint32Array;
}

/** `out`: sealed blobs (seal) or plaintexts (open) back to back. */
export type SealResponse =
  { readonly id: number; readonly out: ArrayBuffer } | { readonly id: number; readonly error: string };

export interface SealWorkerData {
  readonly currentKeyId: number;
  /** Every data key of the database (opening needs retired ones too); zeroed by the worker once read. */
  readonly keys: readonly { readonly id: number; readonly key: Uint8Array }[];
}

/** The worker answered a batch with an error (e.g. a blob that does not open): the thread is fine. */
export class SealBatchError extends Error {}

interface Pending {
  resolve(out: Buffer): void;
  reject(e: Error): void;
}

/**
 * Built (tsc) code starts the compiled seal-worker.js directly. Run from TypeScript source under
 * tsx, the worker must register tsx first: Node 20 does not carry the parent's module hooks
 * into worker threads, so the worker is a one-line bootstrap that loads the .ts file through
 * tsx's CommonJS require API. (Its ESM tsImport API worked too, but each such thread took ~10 MB
 * more memory, which two threads next to scrypt's 128 MiB could not spare under 300 MB.)
 */
function startWorker(data: SealWorkerData): Worker {
  if (!import.meta.url.endsWith('.ts'))
    return new Worker(new URL('./seal-worker.js', import.meta.url), { workerData: data });
  const worker = fileURLToPath(new URL('./seal-worker.ts', import.meta.url));
  const tsx = createRequire(import.meta.url).resolve('tsx/cjs/api');
  const code = `require(${JSON.stringify(tsx)}).require(${JSON.stringify(worker)}, ${JSON.stringify(import.meta.url)});`;
  return new Worker(code, { eval: true, workerData: data });
}

/** One worker thread of a SealWorker and the requests it holds. */
interface Thread {
  readonly worker: Worker;
  pending: number;
}

/**
 * **(choice)** Threads a SealWorker may start: one per core, at most 4. A second thread is
 * started only when a batch is sent while every thread is busy (an export keeps several pages
 * in flight; a bulk insert sends one batch at a time and so keeps one thread). Opening a million
 * PPS costs ~7 s of AES-GCM set-up on one thread (one createDecipheriv each); two split it.
 */
export const MAX_SEAL_THREADS = Math.max(1, Math.min(4, availableParallelism()));

/**
 * Worker threads that seal and open batches under copies of the data keys. Each batch goes to
 * the thread with the fewest outstanding batches; answers may arrive out of order (each request
 * has its own promise). A thread is unref'd while idle so it never keeps a process alive, and
 * ref'd while a batch is out so an awaiting caller is not cut short by process exit. A thread
 * that fails fails the whole SealWorker (the caller then works inline).
 */
export class SealWorker {
  readonly #threads: Thread[] = [];
  readonly #maxThreads: number;
  readonly #pending = new Map<number, Pending & { readonly thread: Thread }>();
  /** Key copies for threads not started yet; zeroed when the last one starts, or on close. */
  #data: SealWorkerData | undefined;
  #nextId = 1;
  #failure: Error | undefined;

  /**
   * `keys` are copied and zeroed here; each thread gets its own copy of the copies, which are
   * zeroed once the last thread has started (or on close).
   */
  constructor(currentKeyId: number, keys: ReadonlyMap<number, Buffer>, maxThreads = MAX_SEAL_THREADS) {
    const data: SealWorkerData = {
      currentKeyId,
      keys: [...keys].map(([id, key]) => ({ id, key: new Uint8Array(key) })),
    };
    for (const key of keys.values()) key.fill(0);
    this.#maxThreads = Math.max(1, maxThreads);
    this.#data = data;
    this.#startThread();
  }

  /** Threads started so far. */
  get threads(): number {
    return this.#threads.length;
  }

  #startThread(): Thread {
    const data = this.#data;
    if (data === undefined) throw new Error('seal worker: no keys left to start a thread');
    const worker = startWorker(data);
    // Each thread got its own copy when its Worker was constructed.
    if (this.#threads.length + 1 >= this.#maxThreads) this.#dropKeys();
    const thread: Thread = { worker, pending: 0 };
    this.#threads.push(thread);
    worker.unref();
    worker.on('message', (m: SealResponse) => {
      const p = this.#pending.get(m.id);
      if (p === undefined) return;
      this.#settled(m.id);
      if ('error' in m) p.reject(new SealBatchError(m.error));
      else p.resolve(Buffer.from(m.out));
    });
    worker.on('error', (e) => this.#fail(e));
    worker.on('exit', (code) => this.#fail(new Error(`seal worker exited (code ${code})`)));
    return thread;
  }

  #dropKeys(): void {
    for (const k of this.#data?.keys ?? []) k.key.fill(0);
    this.#data = undefined;
  }

  /** The least busy thread; a new one if every thread is busy and another may start. */
  #pick(): Thread {
    let best = this.#threads[0] as Thread;
    for (const t of this.#threads) if (t.pending < best.pending) best = t;
    if (best.pending > 0 && this.#threads.length < this.#maxThreads && this.#data !== undefined) {
      try {
        return this.#startThread();
      } catch {
        this.#dropKeys(); // cannot start more: keep the threads there are
      }
    }
    return best;
  }

  /** Seals packed secrets; `data`'s memory is transferred to the worker (and zeroed there). */
  seal(data: Buffer, plainLengths: Uint32Array, aadLengths: Uint32Array): Promise<Buffer> {
    return this.#send('seal', data, plainLengths, aadLengths);
  }

  /**
   * Opens packed blobs; `data`'s memory is transferred to the worker. Resolves with the
   * plaintexts back to back (the caller zeroes them when done); a blob that does not open
   * rejects with SealBatchError (open it inline to learn which one).
   */
  open(data: Buffer, blobLengths: Uint32Array, aadLengths: Uint32Array): Promise<Buffer> {
    return this.#send('open', data, blobLengths, aadLengths);
  }

  async close(): Promise<void> {
    this.#fail(new Error('seal worker closed'));
    this.#dropKeys();
    await Promise.all(this.#threads.map((t) => t.worker.terminate()));
  }

  #send(op: SealRequest['op'], data: Buffer, lengths: Uint32Array, aadLengths: Uint32Array): Promise<Buffer> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    const thread = this.#pick();
    if (thread.pending++ === 0) thread.worker.ref();
    return new Promise<Buffer>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, thread });
      const buffer = data.buffer as ArrayBuffer;
      const request: SealRequest = { id, op, data: buffer, lengths, aadLengths };
      // Only the data moves; the small length arrays are copied (the caller still reads them).
      thread.worker.postMessage(request, [buffer]);
    });
  }

  #settled(id: number): void {
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    if (--p.thread.pending === 0) p.thread.worker.unref();
  }

  #fail(e: Error): void {
    this.#failure ??= e;
    for (const [id, p] of this.#pending) {
      this.#settled(id);
      p.reject(e);
    }
  }
}
