import { createHash } from 'node:crypto';

/**
 * A seeded PRNG so that a fleet built twice from the same seed has the same UUIDs, identities and
 * faults on the same devices. Not security code (nothing here protects a secret), but it is still
 * not Math.random: sfc32 (Chris Doty-Humphrey's Small Fast Counter), whose 128-bit state is taken
 * from SHA-256 of the seed and a label, so every purpose ("uuid", "fault 2", ...) draws from its own
 * independent stream and adding a purpose never shifts the others.
 */
export class SeededRandom {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: string, ...labels: readonly (string | number)[]) {
    const h = createHash('sha256')
      .update(JSON.stringify([seed, ...labels]))
      .digest();
    this.#a = h.readUInt32LE(0);
    this.#b = h.readUInt32LE(4);
    this.#c = h.readUInt32LE(8);
    this.#d = h.readUInt32LE(12) | 1;
    // The recommended warm-up: mix the state before the first output.
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, n) for 1 <= n <= 2^32, without modulo bias. */
  below(n: number): number {
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i += 4) {
      const x = this.nextU32();
      for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (x >>> (8 * j)) & 0xff;
    }
    return out;
  }

  /** `count` distinct indices from [0, n), in a seeded order (partial Fisher-Yates). */
  sample(n: number, count: number): number[] {
    const take = Math.min(Math.max(0, count), n);
    const moved = new Map<number, number>();
    const out: number[] = [];
    for (let i = 0; i < take; i++) {
      const j = i + this.below(n - i);
      const vi = moved.get(i) ?? i;
      const vj = moved.get(j) ?? j;
      moved.set(j, vi);
      out.push(vj);
    }
    return out;
  }
}
