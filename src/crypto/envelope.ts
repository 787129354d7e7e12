import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto';
import { ScsError } from '../errors.ts';

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
const OVERHEAD = HEADER_BYTES + IV_BYTES + TAG_BYTES;
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
  return sealWith(masterKey, keyId, dataKey, dataKeyAad(keyId), randomBytes(IV_BYTES));
}

/** Unwraps a data key; a wrong master key (or a damaged row) is SCS_MASTER_KEY_MISMATCH. */
export function unwrapDataKey(masterKey: Buffer, keyId: number, wrapped: Buffer): Buffer {
  checkKey(masterKey, 'master key');
  const key = openWith(() => masterKey, wrapped, dataKeyAad(keyId));
  if (key === undefined || key.length !== DATA_KEY_BYTES || readKeyId(wrapped) !== keyId) {
    throw new ScsError(
      'SCS_MASTER_KEY_MISMATCH',
      `the master key does not open data key ${keyId} of this database (wrong key file, or a database of another installation)`,
      { details: { keyId } },
    );
  }
  return key;
}

/**
 * Seals and opens secrets under the database's data keys. Holds the raw keys privately; nothing
 * on it prints a key. IVs are drawn from a pooled CSPRNG buffer (one randomFill per 4096 seals),
 * which matters when a million PPS are sealed in one run.
 */
export class SecretBox {
  readonly #keys: ReadonlyMap<number, Buffer>;
  readonly #currentKeyId: number;
  readonly #currentKey: Buffer;
  readonly #ivPool = Buffer.allocUnsafe(IV_BYTES * 4096);
  #ivPos = this.#ivPool.length;

  constructor(keys: Iterable<readonly [number, Buffer]>, currentKeyId: number) {
    const map = new Map<number, Buffer>();
    for (const [id, key] of keys) {
      checkKeyId(id);
      checkKey(key, `data key ${id}`);
      map.set(id, Buffer.from(key));
    }
    const current = map.get(currentKeyId);
    if (current === undefined) throw new ScsError('SCS_STORE_FAILED', `no data key with id ${currentKeyId}`);
    this.#keys = map;
    this.#currentKeyId = currentKeyId;
    this.#currentKey = current;
  }

  get currentKeyId(): number {
    return this.#currentKeyId;
  }

  seal(plain: Buffer, aad: string): Buffer {
    if (this.#ivPos + IV_BYTES > this.#ivPool.length) {
      randomFillSync(this.#ivPool);
      this.#ivPos = 0;
    }
    const iv = this.#ivPool.subarray(this.#ivPos, this.#ivPos + IV_BYTES);
    this.#ivPos += IV_BYTES;
    return sealWith(this.#currentKey, this.#currentKeyId, plain, aad, iv);
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
}

/** The key id a blob was sealed under (for rotation: find what still uses an old key). */
export function readKeyId(blob: Buffer): number {
  return blob.readUInt32BE(1);
}

function sealWith(key: Buffer, keyId: number, plain: Buffer, aad: string, iv: Buffer): Buffer {
  checkKeyId(keyId);
  const out = Buffer.allocUnsafe(OVERHEAD + plain.length);
  out.writeUInt8(ENVELOPE_VERSION, 0);
  out.writeUInt32BE(keyId, 1);
  iv.copy(out, HEADER_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(out, aad));
  const body = cipher.update(plain);
  const rest = cipher.final();
  body.copy(out, OVERHEAD);
  rest.copy(out, OVERHEAD + body.length);
  cipher.getAuthTag().copy(out, HEADER_BYTES + IV_BYTES);
  return out;
}

function openWith(keyFor: (id: number) => Buffer | undefined, blob: Buffer, aad: string): Buffer | undefined {
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

function associatedData(blob: Buffer, aad: string): Buffer {
  return Buffer.concat([blob.subarray(0, HEADER_BYTES), Buffer.from(aad, 'utf8')]);
}

function checkKey(key: Buffer, what: string): void {
  if (key.length !== DATA_KEY_BYTES) throw new ScsError('SCS_MASTER_KEY_INVALID', `${what} is not 32 bytes`);
}

function checkKeyId(id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > 0xffffffff) {
    throw new ScsError('SCS_STORE_FAILED', `data key id ${id} is not an integer 1..2^32-1`);
  }
}
