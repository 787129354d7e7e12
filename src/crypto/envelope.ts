import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  randomBytes,
  randomFillSync,
  type KeyObject,
} from 'node:crypto';
import { ScsError } from '../errors.ts';
import { nativeAead, type NativeAead, type NativeKey } from './native-aead.ts';
import { SealBatchError, SealWorker } from './seal-pool.ts';

/**
 * Envelope encryption of secrets at rest (docs/psk-database.md, "Encryption").
 *
 * - The master key (a file outside the database) wraps one or more data keys (DEK), each a random
 *   32-byte AES-256-GCM key stored wrapped in the database under a numeric key id.
 * - Each secret is sealed under the current DEK with a fresh random 96-bit IV. The associated
 *   data binds the ciphertext to its owner (the PID for a PPS), so a sealed PPS copied onto
 *   another row does not open.
 *
 * Sealed blob (all integers big-endian):
 *
 *     version u8 (=1) | key id u32 | iv [12] | tag [16] | ciphertext
 *
 * The 5 header bytes are authenticated too (they are prepended to the associated data), so the
 * key id cannot be swapped without the tag failing.
 */
export const ENVELOPE_VERSION = 1;
export const DATA_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 5;
/** Bytes a sealed blob adds to its plaintext. */
export const OVERHEAD = HEADER_BYTES + IV_BYTES + TAG_BYTES;
const ALGORITHM = 'aes-256-gcm';

/** Associated data of a wrapped data key: names the purpose and the key id it is stored under. */
function dataKeyAad(keyId: number): string {
  return `amt-scs/data-key/${keyId}`;
}

export function generateDataKey(): Buffer {
  return randomBytes(DATA_KEY_BYTES);
}

/** Wraps a data key under the master key (same blob layout, key id = the DEK's own id). */
export function wrapDataKey(masterKey: Buffer, keyId: number, dataKey: Buffer): Buffer {
  checkKey(masterKey, 'master key');
  checkKey(dataKey, 'data key');
  return sealWith(createSecretKey(masterKey), keyId, dataKey, Buffer.from(dataKeyAad(keyId)), randomBytes(IV_BYTES));
}

/** Unwraps a data key; a wrong master key (or a damaged row) is SCS_MASTER_KEY_MISMATCH. */
export function unwrapDataKey(masterKey: Buffer, keyId: number, wrapped: Buffer): Buffer {
  checkKey(masterKey, 'master key');
  const master = createSecretKey(masterKey);
  const key = openWith(() => master, wrapped, dataKeyAad(keyId));
  if (key === undefined || key.length !== DATA_KEY_BYTES || readKeyId(wrapped) !== keyId) {
    throw new ScsError(
      'SCS_MASTER_KEY_MISMATCH',
      `the master key does not open data key ${keyId} of this database (wrong key file, or a database of another installation)`,
      { details: { keyId } },
    );
  }
  return key;
}

/** Below this many secrets a worker round trip costs more than sealing (or opening) inline. */
const WORKER_MIN_BATCH = 2048;
/** Below this many blobs openMany opens inline (a page of an export is 1000 or more). */
const WORKER_MIN_OPEN = 256;

/**
 * Seals and opens secrets under the database's data keys. Holds the keys privately (as
 * KeyObjects); nothing on it prints a key. IVs are drawn from a pooled CSPRNG buffer (one
 * randomFill per 4096 seals), which matters when a million PPS are sealed in one run.
 *
 * Batches (`sealMany`, `openMany`, the packed forms) go to the native AES-GCM when it is built
 * (src/crypto/native-aead.ts: ~0.5 us a secret against ~7.6 through node:crypto's per-call API);
 * single secrets always use node:crypto, so every natively sealed blob a test later opens alone
 * is checked by the other implementation. Without the addon, large batches go to a worker thread
 * (src/crypto/seal-worker.ts) holding copies of the data keys, so AES-GCM runs on another core
 * while the caller writes the previous batch; if the worker cannot run, they work inline.
 */
export class SecretBox {
  readonly #keys: Map<number, KeyObject>;
  #currentKeyId: number;
  #currentKey: KeyObject;
  /** Workers started before addKeys: they finish what they hold and are closed with the box. */
  readonly #oldWorkers: SealWorker[] = [];
  readonly #ivPool = Buffer.allocUnsafe(IV_BYTES * 4096);
  #ivPos = this.#ivPool.length;
  #worker: SealWorker | undefined;
  #workerBroken = false;
  #closed = false;
  /** The native batch AES-GCM (src/crypto/native-aead.ts), or null: batches then use the worker. */
  readonly #aead: NativeAead | null;
  /** Per key id, the native contexts (when #aead is set); ids and contexts in the same order. */
  #nativeIds = new Uint32Array(0);
  #nativeKeys: NativeKey[] = [];

  /**
   * `options.aead`: the native batch AES-GCM to use, or null for node:crypto only (tests of the
   * fallback); the built addon by default.
   */
  constructor(
    keys: Iterable<readonly [number, Buffer]>,
    currentKeyId: number,
    options: { readonly aead?: NativeAead | null } = {},
  ) {
    this.#aead = options.aead === undefined ? nativeAead : options.aead;
    const map = new Map<number, KeyObject>();
    const raw: (readonly [number, Buffer])[] = [];
    for (const [id, key] of keys) {
      checkKeyId(id);
      checkKey(key, `data key ${id}`);
      map.set(id, createSecretKey(key));
      raw.push([id, key]);
    }
    const current = map.get(currentKeyId);
    if (current === undefined) throw new ScsError('SCS_STORE_FAILED', `no data key with id ${currentKeyId}`);
    this.#keys = map;
    this.#currentKeyId = currentKeyId;
    this.#currentKey = current;
    this.#addNative(raw);
  }

  get currentKeyId(): number {
    return this.#currentKeyId;
  }

  /** The ids of every data key this box holds (current and retired). */
  get keyIds(): number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  /**
   * Adds data keys created after this box was (another process rotated the data key,
   * src/store/sql/data-keys.ts) and makes `currentKeyId` the one new secrets are sealed under.
   * Keys already held stay, so every blob that opened before still opens. A started worker holds
   * copies of the old key set: it finishes its batches and the next batch starts a new one.
   */
  addKeys(keys: Iterable<readonly [number, Buffer]>, currentKeyId: number): void {
    const added = new Map<number, KeyObject>();
    const raw: (readonly [number, Buffer])[] = [];
    for (const [id, key] of keys) {
      checkKeyId(id);
      checkKey(key, `data key ${id}`);
      if (!this.#keys.has(id) && !added.has(id)) {
        added.set(id, createSecretKey(key));
        raw.push([id, key]);
      }
    }
    const current = added.get(currentKeyId) ?? this.#keys.get(currentKeyId);
    if (current === undefined) throw new ScsError('SCS_STORE_FAILED', `no data key with id ${currentKeyId}`);
    for (const [id, key] of added) this.#keys.set(id, key);
    this.#addNative(raw);
    this.#currentKeyId = currentKeyId;
    this.#currentKey = current;
    if (this.#worker !== undefined) {
      this.#oldWorkers.push(this.#worker);
      this.#worker = undefined;
    }
  }

  /**
   * Where sealMany's and openMany's batches go: the native AES-GCM on this thread; without it the
   * worker (not started yet, or started), or inline after the worker failed.
   */
  get batchSealer(): 'native' | 'not-started' | 'worker' | 'inline' {
    if (this.#aead !== null) return 'native';
    return this.#workerBroken ? 'inline' : this.#worker === undefined ? 'not-started' : 'worker';
  }

  /** Native contexts for keys new to this box (the raw key is copied into OpenSSL's schedule). */
  #addNative(keys: readonly (readonly [number, Buffer])[]): void {
    const aead = this.#aead;
    if (aead === null || keys.length === 0) return;
    const ids = [...this.#nativeIds];
    for (const [id, key] of keys) {
      ids.push(id);
      this.#nativeKeys.push(aead.contexts(key));
    }
    this.#nativeIds = Uint32Array.from(ids);
  }

  seal(plain: Buffer, aad: string): Buffer {
    return sealWith(this.#currentKey, this.#currentKeyId, plain, Buffer.from(aad, 'utf8'), this.#iv());
  }

  /**
   * Seals packed secrets: `data` holds all plaintexts back to back, then all associated data
   * (UTF-8) back to back, with their byte lengths in `plainLengths` / `aadLengths`. Returns one
   * buffer with the blobs back to back (blob i is OVERHEAD + plainLengths[i] bytes). The
   * worker's entry point; sealMany packs for it.
   */
  sealPacked(data: Buffer, plainLengths: Uint32Array, aadLengths: Uint32Array): Buffer {
    let total = 0;
    let aadAt = 0;
    for (const len of plainLengths) {
      total += OVERHEAD + len;
      aadAt += len;
    }
    const out = Buffer.allocUnsafeSlow(total);
    const aead = this.#aead;
    if (aead !== null) {
      const ivs = randomFillSync(Buffer.allocUnsafe(IV_BYTES * plainLengths.length));
      const key = this.#nativeKeys[this.#nativeIds.indexOf(this.#currentKeyId)] as NativeKey;
      aead.seal(key, this.#currentKeyId, data, plainLengths, aadLengths, ivs, out);
      return out;
    }
    let inAt = 0;
    let outAt = 0;
    for (let i = 0; i < plainLengths.length; i++) {
      const len = plainLengths[i] ?? 0;
      const aadLen = aadLengths[i] ?? 0;
      const plain = data.subarray(inAt, inAt + len);
      const aad = data.subarray(aadAt, aadAt + aadLen);
      sealInto(out, outAt, this.#currentKey, this.#currentKeyId, plain, aad, this.#iv());
      inAt += len;
      aadAt += aadLen;
      outAt += OVERHEAD + len;
    }
    return out;
  }

  /**
   * Seals `plains[i]` (a string is taken as UTF-8) for `aads[i]`; blob i of the result is a view
   * into one shared buffer. With the native AES-GCM the whole batch is one call on this thread;
   * without it batches of 2048 and more go to the worker thread in one transferred buffer.
   */
  async sealMany(plains: readonly (Buffer | string)[], aads: readonly string[]): Promise<Buffer[]> {
    if (plains.length !== aads.length) throw new ScsError('SCS_STORE_FAILED', 'sealMany: one aad per secret');
    const inline = (): Buffer[] =>
      plains.map((p, i) => this.seal(typeof p === 'string' ? Buffer.from(p) : p, aads[i] ?? ''));
    const native = this.#aead !== null;
    if (!native && (plains.length < WORKER_MIN_BATCH || this.#workerBroken || this.#closed)) return inline();
    const n = plains.length;
    const plainLengths = new Uint32Array(n);
    const aadLengths = new Uint32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const p = plains[i] as Buffer | string;
      const len = typeof p === 'string' ? Buffer.byteLength(p) : p.length;
      const aadLen = Buffer.byteLength(aads[i] ?? '');
      plainLengths[i] = len;
      aadLengths[i] = aadLen;
      total += len + aadLen;
    }
    // Its own ArrayBuffer (not the shared pool), so it is transferred to the worker, not copied.
    const data = Buffer.allocUnsafeSlow(total);
    let at = 0;
    for (const p of plains) at += typeof p === 'string' ? data.write(p, at) : p.copy(data, at);
    for (const a of aads) at += data.write(a, at);
    let sealed: Buffer;
    if (native) {
      try {
        sealed = this.sealPacked(data, plainLengths, aadLengths);
      } finally {
        data.fill(0);
      }
    } else {
      try {
        sealed = await this.#startWorker().seal(data, plainLengths, aadLengths);
      } catch {
        // The worker could not start or died: seal here; correctness never depends on it.
        await this.#dropWorker();
        return inline();
      }
    }
    const out: Buffer[] = new Array<Buffer>(n);
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const len = OVERHEAD + (plainLengths[i] ?? 0);
      out[i] = sealed.subarray(pos, pos + len);
      pos += len;
    }
    return out;
  }

  /**
   * Opens packed blobs: `data` holds all blobs back to back, then all associated data (UTF-8)
   * back to back, with their byte lengths in `blobLengths` / `aadLengths`. Returns the
   * plaintexts back to back in a buffer of its own (transferable); throws like `open` at the
   * first blob that does not open. The worker's entry point; openMany packs for it.
   */
  openPacked(data: Buffer, blobLengths: Uint32Array, aadLengths: Uint32Array): Buffer {
    let total = 0;
    let aadAt = 0;
    for (const len of blobLengths) {
      if (len < OVERHEAD) throw new ScsError('SCS_SECRET_UNREADABLE', 'a stored secret is shorter than its envelope');
      total += len - OVERHEAD;
      aadAt += len;
    }
    const out = Buffer.allocUnsafeSlow(total);
    // Natively first; a blob that does not open leaves `out` zeroed and the loop below names it.
    if (this.#aead?.open(this.#nativeKeys, this.#nativeIds, data, blobLengths, aadLengths, out) === -1) return out;
    let inAt = 0;
    let outAt = 0;
    try {
      for (let i = 0; i < blobLengths.length; i++) {
        const len = blobLengths[i] ?? 0;
        const aadLen = aadLengths[i] ?? 0;
        const blob = data.subarray(inAt, inAt + len);
        const aad = data.toString('utf8', aadAt, aadAt + aadLen);
        const plain = this.open(blob, aad);
        plain.copy(out, outAt);
        plain.fill(0);
        inAt += len;
        aadAt += aadLen;
        outAt += len - OVERHEAD;
      }
    } catch (e) {
      out.fill(0);
      throw e;
    }
    return out;
  }

  /**
   * Opens `blobs[i]` sealed for `aads[i]` and returns the plaintexts back to back in one buffer
   * (plaintext i is `blobs[i].length - OVERHEAD` bytes; zero the buffer when done). With the
   * native AES-GCM one call on this thread; without it batches of 256 and more are opened on the
   * worker thread. A blob that does not open is
   * SCS_SECRET_UNREADABLE naming its owner, as with `open`.
   */
  async openMany(blobs: readonly Buffer[], aads: readonly string[]): Promise<Buffer> {
    if (blobs.length !== aads.length) throw new ScsError('SCS_STORE_FAILED', 'openMany: one aad per blob');
    const n = blobs.length;
    const inline = (): Buffer => {
      let total = 0;
      for (const b of blobs) total += Math.max(0, b.length - OVERHEAD);
      const out = Buffer.allocUnsafeSlow(total);
      let at = 0;
      try {
        for (let i = 0; i < n; i++) {
          const plain = this.open(blobs[i] as Buffer, aads[i] ?? '');
          at += plain.copy(out, at);
          plain.fill(0);
        }
      } catch (e) {
        out.fill(0);
        throw e;
      }
      return out;
    };
    if (this.#aead === null && (n < WORKER_MIN_OPEN || this.#workerBroken || this.#closed)) return inline();
    const blobLengths = new Uint32Array(n);
    const aadLengths = new Uint32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const len = (blobs[i] as Buffer).length;
      const aadLen = Buffer.byteLength(aads[i] ?? '');
      blobLengths[i] = len;
      aadLengths[i] = aadLen;
      total += len + aadLen;
    }
    const data = Buffer.allocUnsafeSlow(total);
    let at = 0;
    for (const b of blobs) at += b.copy(data, at);
    for (const a of aads) at += data.write(a, at);
    return this.openManyPacked(data, blobLengths, aadLengths);
  }

  /**
   * openMany for blobs already packed as `openPacked` takes them (blobs back to back, then the
   * associated data back to back). `data` must own its ArrayBuffer (`Buffer.allocUnsafeSlow`):
   * it is transferred to the worker for batches of 256 and more, unless `inline` (a caller that
   * knows the whole job is small: starting the worker would cost more than it saves).
   */
  async openManyPacked(
    data: Buffer,
    blobLengths: Uint32Array,
    aadLengths: Uint32Array,
    options: { readonly inline?: boolean } = {},
  ): Promise<Buffer> {
    if (blobLengths.length !== aadLengths.length) {
      throw new ScsError('SCS_STORE_FAILED', 'openManyPacked: one aad length per blob');
    }
    const ownBuffer = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
    const small = blobLengths.length < WORKER_MIN_OPEN || options.inline === true;
    if (this.#aead !== null || small || !ownBuffer || this.#workerBroken || this.#closed) {
      return this.openPacked(data, blobLengths, aadLengths);
    }
    // Kept to open inline if the worker fails (the transferred original is gone then).
    const copy = Buffer.from(data);
    try {
      return await this.#startWorker().open(data, blobLengths, aadLengths);
    } catch (e) {
      // A blob that does not open: open inline, which names it. A dead worker: inline from now on.
      if (!(e instanceof SealBatchError)) await this.#dropWorker();
      return this.openPacked(copy, blobLengths, aadLengths);
    }
  }

  /** Opens a blob sealed for `aad`; any mismatch (key, owner, a flipped bit) is SCS_SECRET_UNREADABLE. */
  open(blob: Buffer, aad: string): Buffer {
    const plain = openWith((id) => this.#keys.get(id), blob, aad);
    if (plain === undefined) {
      throw new ScsError('SCS_SECRET_UNREADABLE', `a stored secret of ${aad} does not decrypt`, {
        details: { owner: aad, keyId: blob.length >= HEADER_BYTES ? readKeyId(blob) : null },
      });
    }
    return plain;
  }

  /** Stops the worker, if one was started. The box still seals inline afterwards. */
  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.close();
    for (const old of this.#oldWorkers.splice(0)) await old.close();
  }

  /** The worker, started on first use with copies of every data key (opening needs retired ones). */
  #startWorker(): SealWorker {
    if (this.#worker === undefined) {
      const keys = new Map<number, Buffer>();
      for (const [id, key] of this.#keys) keys.set(id, key.export());
      this.#worker = new SealWorker(this.#currentKeyId, keys);
    }
    return this.#worker;
  }

  async #dropWorker(): Promise<void> {
    this.#workerBroken = true;
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.close();
  }

  #iv(): Buffer {
    if (this.#ivPos + IV_BYTES > this.#ivPool.length) {
      randomFillSync(this.#ivPool);
      this.#ivPos = 0;
    }
    const iv = this.#ivPool.subarray(this.#ivPos, this.#ivPos + IV_BYTES);
    this.#ivPos += IV_BYTES;
    return iv;
  }
}

/** The key id a blob was sealed under (for rotation: find what still uses an old key). */
export function readKeyId(blob: Buffer): number {
  return blob.readUInt32BE(1);
}

function sealWith(key: KeyObject, keyId: number, plain: Buffer, aad: Buffer, iv: Buffer): Buffer {
  const out = Buffer.allocUnsafe(OVERHEAD + plain.length);
  sealInto(out, 0, key, keyId, plain, aad, iv);
  return out;
}

/** Writes the sealed blob of `plain` at `out[offset..offset + OVERHEAD + plain.length)`. */
function sealInto(
  out: Buffer,
  offset: number,
  key: KeyObject,
  keyId: number,
  plain: Buffer,
  aad: Buffer,
  iv: Buffer,
): void {
  checkKeyId(keyId);
  out.writeUInt8(ENVELOPE_VERSION, offset);
  out.writeUInt32BE(keyId, offset + 1);
  iv.copy(out, offset + HEADER_BYTES);
  // GCM's default tag is 16 bytes; passing authTagLength costs an options parse per call.
  const cipher = createCipheriv(ALGORITHM, key, iv);
  cipher.setAAD(associatedData(out.subarray(offset, offset + HEADER_BYTES), aad));
  const body = cipher.update(plain);
  body.copy(out, offset + OVERHEAD);
  cipher.final();
  cipher.getAuthTag().copy(out, offset + HEADER_BYTES + IV_BYTES);
}

function openWith(keyFor: (id: number) => KeyObject | undefined, blob: Buffer, aad: string): Buffer | undefined {
  if (blob.length < OVERHEAD || blob.readUInt8(0) !== ENVELOPE_VERSION) return undefined;
  const key = keyFor(readKeyId(blob));
  if (key === undefined) return undefined;
  const iv = blob.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES);
  const tag = blob.subarray(HEADER_BYTES + IV_BYTES, OVERHEAD);
  const decipher = createDecipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(associatedData(blob, aad));
  decipher.setAuthTag(tag);
  const body = decipher.update(blob.subarray(OVERHEAD));
  try {
    // GCM authenticates in final(): until then `body` is unverified and must not escape.
    return Buffer.concat([body, decipher.final()]);
  } catch {
    body.fill(0);
    return undefined;
  }
}

function associatedData(blob: Buffer, aad: Buffer | string): Buffer {
  const bytes = typeof aad === 'string' ? Buffer.from(aad, 'utf8') : aad;
  const out = Buffer.allocUnsafe(HEADER_BYTES + bytes.length);
  blob.copy(out, 0, 0, HEADER_BYTES);
  bytes.copy(out, HEADER_BYTES);
  return out;
}

function checkKey(key: Buffer, what: string): void {
  if (key.length !== DATA_KEY_BYTES) throw new ScsError('SCS_MASTER_KEY_INVALID', `${what} is not 32 bytes`);
}

function checkKeyId(id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > 0xffffffff) {
    throw new ScsError('SCS_STORE_FAILED', `data key id ${id} is not an integer 1..2^32-1`);
  }
}
