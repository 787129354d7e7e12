import { randomFillSync } from 'node:crypto';
import { ScsError } from '../errors.ts';
import { Secret } from '../secret.ts';
import { checkBatchName } from '../store/batch.ts';
import type { PskState } from '../store/lifecycle.ts';
import type { NewPsk, PskFilter, PskRow, Store } from '../store/store.ts';
import { ALPHABET } from './checksum.ts';
import type { Pid } from './pid.ts';
import type { Pps } from './pps.ts';

/** Largest single generate run; 36^7 ≈ 7.8e10 PIDs leave room for far more over time. */
export const GENERATE_MAX = 10_000_000;
/** PSKs per insertMany call (one transaction): large enough to amortize SQLite's WAL writes. */
export const GENERATE_CHUNK = 25_000;

export interface DrawnPsk {
  readonly pid: Pid;
  readonly pps: Pps;
}

export interface GenerateOptions {
  readonly count: number;
  readonly batch: string;
  readonly actor: string;
  readonly chunkSize?: number;
  /** Called after every chunk with the PSKs stored so far. */
  readonly onProgress?: (done: number, total: number) => void;
  readonly signal?: AbortSignal;
  /** Source of pairs; default PairSource (a CSPRNG). Tests inject collisions here. */
  readonly draw?: () => DrawnPsk;
}

export interface GenerateResult {
  readonly batch: string;
  readonly generated: number;
  /** PIDs drawn that already existed (in the database or the same run) and were drawn again. */
  readonly collisions: number;
}

const SYMBOLS = Buffer.from(ALPHABET, 'latin1');

/**
 * Draws PID/PPS pairs by the rules of src/psk/generate.ts (protocol.md §2: CSPRNG bytes, those
 * ≥ 252 rejected so `byte % 36` is uniform, Intel check characters), building each pair in a
 * byte buffer: about five times faster than composing strings symbol by symbol, which matters
 * for a million pairs. psk/service.test.ts checks every pair parses and the symbols are uniform.
 */
export class PairSource {
  readonly #pool = Buffer.allocUnsafe(65536);
  #pos = this.#pool.length;
  readonly #pair = Buffer.allocUnsafe(40);

  next(): DrawnPsk {
    const out = this.#pair;
    this.#group(out, 0, 7);
    for (let g = 0; g < 8; g++) this.#group(out, 8 + g * 4, 3);
    return { pid: out.toString('latin1', 0, 8) as Pid, pps: out.toString('latin1', 8, 40) as Pps };
  }

  /** `n` random symbols at `at`, then their check character (sum of ASCII codes mod 36). */
  #group(out: Buffer, at: number, n: number): void {
    let sum = 0;
    for (let k = 0; k < n; k++) {
      const code = this.#symbol();
      out[at + k] = code;
      sum += code;
    }
    out[at + n] = SYMBOLS[sum % 36] as number;
  }

  #symbol(): number {
    for (;;) {
      if (this.#pos >= this.#pool.length) {
        randomFillSync(this.#pool);
        this.#pos = 0;
      }
      const byte = this.#pool[this.#pos++] as number;
      if (byte < 252) return SYMBOLS[byte % 36] as number;
    }
  }
}

/**
 * Generates exactly `count` new PSKs into `batch`. PID collisions are expected at scale (a
 * million draws from 36^7 collide about six times, birthday bound n²/2N): the store skips a
 * PID that exists, and the shortfall is drawn again. Each chunk is one insertMany (one
 * transaction with its audit entries), so an interrupted run leaves whole chunks behind.
 * Chunks are large (25,000) because SQLite's cost per commit grows with the random pages of the
 * PID index it rewrites, not with the rows; inside a chunk the store overlaps sealing on its
 * worker thread with the inserts.
 */
export async function generatePsks(store: Store, options: GenerateOptions): Promise<GenerateResult> {
  const { count, actor } = options;
  const batch = checkBatchName(options.batch);
  if (!Number.isInteger(count) || count < 1 || count > GENERATE_MAX) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `count must be a whole number 1..${GENERATE_MAX}, got ${count}`);
  }
  const chunkSize = options.chunkSize ?? GENERATE_CHUNK;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `chunk size must be a positive whole number, got ${chunkSize}`);
  }
  const source = new PairSource();
  const draw = options.draw ?? (() => source.next());
  let generated = 0;
  let collisions = 0;
  let stalled = 0;
  while (generated < count) {
    options.signal?.throwIfAborted();
    const size = Math.min(chunkSize, count - generated);
    const rows: NewPsk[] = new Array<NewPsk>(size);
    for (let i = 0; i < size; i++) {
      const { pid, pps } = draw();
      rows[i] = { pid, pps: new Secret(pps), batch };
    }
    const result = await store.psks.insertMany(rows, { actor, source: 'generate' });
    generated += result.inserted;
    collisions += result.duplicates.length;
    // A CSPRNG never stalls; a broken source (or a full PID space) must not loop forever.
    stalled = result.inserted === 0 ? stalled + 1 : 0;
    if (stalled >= 10) {
      throw new ScsError('SCS_STORE_FAILED', 'PSK generation made no progress: every drawn PID already exists');
    }
    options.onProgress?.(generated, count);
  }
  return { batch, generated, collisions };
}

export interface RevokeOptions {
  readonly actor: string;
  readonly reason?: string;
}

/** States a PSK can be revoked from (src/store/lifecycle.ts). */
export const REVOCABLE: readonly PskState[] = ['available', 'exported', 'in_use'];

/** Revokes all of `pids` or none (a consumed, missing or already revoked PID fails the call). */
export async function revokePsks(store: Store, pids: readonly Pid[], options: RevokeOptions): Promise<number> {
  const unique = [...new Set(pids)];
  await store.psks.transition({
    pids: unique,
    from: REVOCABLE,
    to: 'revoked',
    actor: options.actor,
    ...(options.reason === undefined ? {} : { reason: options.reason }),
  });
  return unique.length;
}

/** Every PSK matching `filter` (limit = total cap), page by page in id order. */
export async function* listPsks(store: Store, filter: PskFilter = {}): AsyncGenerator<PskRow> {
  let remaining = filter.limit ?? Infinity;
  let afterId = filter.afterId;
  while (remaining > 0) {
    const limit = Math.min(1000, remaining);
    const page = await store.psks.list({
      ...(filter.state === undefined ? {} : { state: filter.state }),
      ...(filter.batch === undefined ? {} : { batch: filter.batch }),
      ...(afterId === undefined ? {} : { afterId }),
      limit,
    });
    yield* page;
    const last = page.at(-1);
    if (last === undefined || page.length < limit) return;
    afterId = last.id;
    remaining -= page.length;
  }
}
