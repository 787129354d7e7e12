import { Worker } from 'node:worker_threads';

export interface SealRequest {
  readonly id: number;
  /** Plaintexts then associated data, back to back (SecretBox.sealPacked). */
  readonly data: ArrayBuffer;
  readonly plainLengths: Uint32Array;
  readonly aadLengths: Uint32Array;
}

export type SealResponse =
  { readonly id: number; readonly blobs: ArrayBuffer } | { readonly id: number; readonly error: string };

export interface SealWorkerData {
  readonly keyId: number;
  readonly key: Uint8Array;
}

interface Pending {
  resolve(blobs: Buffer): void;
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
 * One worker thread that seals batches under a copy of the current data key. Requests are
 * answered in order; the thread is unref'd while idle so it never keeps a process alive, and
 * ref'd while a batch is out so an awaiting caller is not cut short by process exit.
 */
export class SealWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #failure: Error | undefined;

  constructor(keyId: number, key: Buffer) {
    const data: SealWorkerData = { keyId, key: new Uint8Array(key) };
    key.fill(0);
    this.#worker = startWorker(data);
    data.key.fill(0); // the worker got its own copy when the Worker was constructed
    this.#worker.unref();
    this.#worker.on('message', (m: SealResponse) => {
      const p = this.#pending.get(m.id);
      if (p === undefined) return;
      this.#settled(m.id);
      if ('error' in m) p.reject(new Error(m.error));
      else p.resolve(Buffer.from(m.blobs));
    });
    this.#worker.on('error', (e) => this.#fail(e));
    this.#worker.on('exit', (code) => this.#fail(new Error(`seal worker exited (code ${code})`)));
  }

  /** Seals packed secrets; `data`'s memory is transferred to the worker (and zeroed there). */
  seal(data: Buffer, plainLengths: Uint32Array, aadLengths: Uint32Array): Promise<Buffer> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    if (this.#pending.size === 0) this.#worker.ref();
    return new Promise<Buffer>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const buffer = data.buffer as ArrayBuffer;
      const request: SealRequest = { id, data: buffer, plainLengths, aadLengths };
      // Only the data moves; the small length arrays are copied (the caller still reads them).
      this.#worker.postMessage(request, [buffer]);
    });
  }

  async close(): Promise<void> {
    this.#fail(new Error('seal worker closed'));
    await this.#worker.terminate();
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
