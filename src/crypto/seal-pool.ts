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
 * into worker threads, so the worker is a one-line bootstrap that loads the .ts file through tsx's tsImport API.
 */
function startWorker(data: SealWorkerData): Worker {
  if (!import.meta.url.endsWith('.ts'))
    return new Worker(new URL('./seal-worker.js', import.meta.url), { workerData: data });
  const worker = new URL('./seal-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then((api) => api.tsImport(${JSON.stringify(worker)}, ${JSON.stringify(import.meta.url)}));`;
  return new Worker(code, { eval: true, workerData: data });
}

/**
 * One worker thread that seals and opens batches under copies of the data keys. Requests are
 * answered in order; the thread is unref'd while idle so it never keeps a process alive, and
 * ref'd while a batch is out so an awaiting caller is not cut short by process exit.
 */
export class SealWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #failure: Error | undefined;

  /** `keys` are copied into the worker and then zeroed here. */
  constructor(currentKeyId: number, keys: ReadonlyMap<number, Buffer>) {
    const data: SealWorkerData = {
      currentKeyId,
      keys: [...keys].map(([id, key]) => ({ id, key: new Uint8Array(key) })),
    };
    for (const key of keys.values()) key.fill(0);
    this.#worker = startWorker(data);
    for (const k of data.keys) k.key.fill(0); // the worker got its own copy when the Worker was constructed
    this.#worker.unref();
    this.#worker.on('message', (m: SealResponse) => {
      const p = this.#pending.get(m.id);
      if (p === undefined) return;
      this.#settled(m.id);
      if ('error' in m) p.reject(new SealBatchError(m.error));
      else p.resolve(Buffer.from(m.out));
    });
    this.#worker.on('error', (e) => this.#fail(e));
    this.#worker.on('exit', (code) => this.#fail(new Error(`seal worker exited (code ${code})`)));
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
    await this.#worker.terminate();
  }

  #send(op: SealRequest['op'], data: Buffer, lengths: Uint32Array, aadLengths: Uint32Array): Promise<Buffer> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    if (this.#pending.size === 0) this.#worker.ref();
    return new Promise<Buffer>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const buffer = data.buffer as ArrayBuffer;
      const request: SealRequest = { id, op, data: buffer, lengths, aadLengths };
      // Only the data moves; the small length arrays are copied (the caller still reads them).
      this.#worker.postMessage(request, [buffer]);
    });
  }

  #settled(id: number): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#worker.unref();
  }

  #fail(e: Error): void {
    this.#failure ??= e;
    for (const [id, p] of this.#pending) {
      this.#settled(id);
      p.reject(e);
    }
  }
}
