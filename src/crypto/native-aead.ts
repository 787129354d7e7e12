import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The optional native batch AES-256-GCM (native/aead.c, built by `npm install` through
 * scripts/build-native.mjs). It seals and opens the same envelope as src/crypto/envelope.ts with
 * Node's own OpenSSL, ~14x faster per secret than node:crypto's per-call API (docs/psk-database.md,
 * "Encryption"). When it is not built (no C compiler), SecretBox works with node:crypto alone.
 */
export interface NativeAead {
  /** Encryption and decryption contexts for one 32-byte key (the key schedule lives in OpenSSL). */
  contexts(key: Buffer): NativeKey;
  /**
   * Seals plaintexts (`data`: plaintexts back to back, then associated data back to back) under
   * `key`, with `ivs` (12 bytes each), into `out` (the blobs back to back).
   */
  seal(
    key: NativeKey,
    keyId: number,
    data: Buffer,
    plainLengths: Uint32Array,
    aadLengths: Uint32Array,
    ivs: Buffer,
    out: Buffer,
  ): void;
  /**
   * Opens blobs (`data`: blobs back to back, then associated data back to back) into `out`;
   * `keys[j]` holds the key with id `keyIds[j]`. Returns -1, or the index of the first blob that
   * did not open (`out` is zeroed then).
   */
  open(
    keys: readonly NativeKey[],
    keyIds: Uint32Array,
    data: Buffer,
    blobLengths: Uint32Array,
    aadLengths: Uint32Array,
    out: Buffer,
  ): number;
}

/** An opaque handle to OpenSSL contexts; freed by the garbage collector. */
export type NativeKey = { readonly __nativeKey: unique symbol };

/** Where node-gyp puts the addon, from src/crypto (tsx) and from dist/src/crypto (built). */
const CANDIDATES = ['../../build/Release/aead.node', '../../../build/Release/aead.node'];

function load(): { readonly aead: NativeAead | null; readonly why: string } {
  const require = createRequire(import.meta.url);
  for (const relative of CANDIDATES) {
    const file = fileURLToPath(new URL(relative, import.meta.url));
    if (!existsSync(file)) continue;
    try {
      return { aead: require(file) as NativeAead, why: file };
    } catch (e) {
      return { aead: null, why: `${file} did not load: ${e instanceof Error ? e.message : String(e)}` };
    }
  }
  return { aead: null, why: 'not built (npm install builds it when a C compiler is present)' };
}

const loaded = load();

/** The addon, or null when it is not built or did not load. */
export const nativeAead: NativeAead | null = loaded.aead;
/** Where the addon was loaded from, or why it was not: for `doctor`-style reports and logs. */
export const nativeAeadStatus: string = loaded.why;
