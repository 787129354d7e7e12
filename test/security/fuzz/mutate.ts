/**
 * Input generation for the decoder fuzzers (docs/security.md, "Fuzzing the decoders"): mutations
 * of valid samples in the manner of AFL/libFuzzer's havoc stage (bit flips, interesting values,
 * inserts, deletes, repeats, dictionary tokens, splices), random bytes, and random runs of
 * dictionary tokens. Seeded, so every input can be regenerated from (target, seed, index).
 */

/** The part of simulator/fleet/prng.ts's SeededRandom the generators use. */
export interface Rng {
  nextU32(): number;
  /** Uniform in [0, n). */
  below(n: number): number;
  bytes(n: number): Buffer;
}

export interface Corpus {
  readonly samples: readonly Buffer[];
  /** Tokens that mean something to the decoder (field names, delimiters, magic numbers). */
  readonly dictionary: readonly Buffer[];
  /** Inputs are cut to this length. */
  readonly maxBytes: number;
}

export type InputKind = 'mutated' | 'random' | 'tokens';

const INTERESTING_8 = [0x00, 0x01, 0x02, 0x03, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x2c, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_16 = [0, 1, 2, 3, 8, 16, 24, 31, 32, 33, 64, 255, 256, 512, 0x7fff, 0x8000, 0xfffe, 0xffff];
const INTERESTING_32 = [0, 1, 2, 10, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x10000, 20_001];

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.below(items.length)] as T;
}

function writeWord(b: Buffer, at: number, value: number, width: 2 | 4, bigEndian: boolean): void {
  if (at + width > b.length) return;
  if (width === 2) {
    if (bigEndian) b.writeUInt16BE(value & 0xffff, at);
    else b.writeUInt16LE(value & 0xffff, at);
  } else if (bigEndian) b.writeUInt32BE(value >>> 0, at);
  else b.writeUInt32LE(value >>> 0, at);
}

/** One havoc step; returns the changed buffer (possibly a new one). */
function step(input: Buffer, rng: Rng, corpus: Corpus): Buffer {
  const n = input.length;
  const at = n === 0 ? 0 : rng.below(n);
  switch (rng.below(13)) {
    case 0: {
      if (n === 0) return rng.bytes(1);
      const b = Buffer.from(input);
      b[at] = (b[at] as number) ^ (1 << rng.below(8));
      return b;
    }
    case 1: {
      if (n === 0) return rng.bytes(1);
      const b = Buffer.from(input);
      b[at] = rng.below(256);
      return b;
    }
    case 2: {
      if (n === 0) return Buffer.from([pick(rng, INTERESTING_8)]);
      const b = Buffer.from(input);
      b[at] = pick(rng, INTERESTING_8);
      return b;
    }
    case 3: {
      const b = Buffer.from(input);
      writeWord(b, at, pick(rng, INTERESTING_16), 2, rng.below(2) === 1);
      return b;
    }
    case 4: {
      const b = Buffer.from(input);
      writeWord(b, at, pick(rng, INTERESTING_32), 4, rng.below(2) === 1);
      return b;
    }
    case 5: {
      if (n === 0) return input;
      const b = Buffer.from(input);
      b[at] = ((b[at] as number) + rng.below(35) - 17) & 0xff;
      return b;
    }
    case 6:
      return Buffer.concat([input.subarray(0, at), rng.bytes(1 + rng.below(16)), input.subarray(at)]);
    case 7: {
      const len = 1 + rng.below(Math.max(1, Math.min(n - at, 64)));
      return Buffer.concat([input.subarray(0, at), input.subarray(at + len)]);
    }
    case 8: {
      // Repeat a range: grows counts, nesting and line lengths past their bounds.
      const len = 1 + rng.below(Math.max(1, Math.min(n - at, 32)));
      const piece = input.subarray(at, at + len);
      const times = 1 + rng.below(rng.below(4) === 0 ? 512 : 8);
      return Buffer.concat([input.subarray(0, at), ...Array<Buffer>(times).fill(piece), input.subarray(at)]);
    }
    case 9:
    case 10: {
      if (corpus.dictionary.length === 0) return input;
      const token = pick(rng, corpus.dictionary);
      if (rng.below(2) === 0) return Buffer.concat([input.subarray(0, at), token, input.subarray(at)]);
      return Buffer.concat([input.subarray(0, at), token, input.subarray(at + token.length)]);
    }
    case 11:
      return input.subarray(0, rng.below(n + 1));
    default: {
      const other = pick(rng, corpus.samples);
      const cut = rng.below(other.length + 1);
      return Buffer.concat([input.subarray(0, at), other.subarray(cut)]);
    }
  }
}

/** A valid sample changed by 1-8 havoc steps. */
export function mutate(rng: Rng, corpus: Corpus): Buffer {
  let b = pick(rng, corpus.samples);
  const steps = 1 + rng.below(rng.below(4) === 0 ? 16 : 4);
  for (let i = 0; i < steps; i++) {
    b = step(b, rng, corpus);
    if (b.length > corpus.maxBytes) b = b.subarray(0, corpus.maxBytes);
  }
  return b;
}

/** Uniform random bytes, mostly short (decoders refuse most garbage early; length matters). */
export function randomBytes(rng: Rng, corpus: Corpus): Buffer {
  const cap = rng.below(4) === 0 ? corpus.maxBytes : Math.min(corpus.maxBytes, 600);
  return rng.bytes(rng.below(cap + 1));
}

/** Dictionary tokens and random bytes strung together: text formats get past their first check. */
export function tokens(rng: Rng, corpus: Corpus): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  const count = 1 + rng.below(40);
  for (let i = 0; i < count && size < corpus.maxBytes; i++) {
    const part =
      corpus.dictionary.length > 0 && rng.below(4) !== 0 ? pick(rng, corpus.dictionary) : rng.bytes(1 + rng.below(8));
    parts.push(part);
    size += part.length;
  }
  return Buffer.concat(parts).subarray(0, corpus.maxBytes);
}

/** 70% mutated samples, 15% random bytes, 15% token strings. */
export function nextInput(rng: Rng, corpus: Corpus): { kind: InputKind; input: Buffer } {
  const r = rng.below(100);
  if (r < 70) return { kind: 'mutated', input: mutate(rng, corpus) };
  if (r < 85) return { kind: 'random', input: randomBytes(rng, corpus) };
  return { kind: 'tokens', input: tokens(rng, corpus) };
}

/** Cuts `input` into 1-6 pieces at random places (streaming decoders must not care where). */
export function split(rng: Rng, input: Buffer): Buffer[] {
  if (input.length < 2 || rng.below(3) === 0) return [input];
  if (rng.below(8) === 0 && input.length <= 4096) return [...input].map((b) => Buffer.from([b]));
  const cuts = new Set<number>();
  const count = 1 + rng.below(5);
  for (let i = 0; i < count; i++) cuts.add(1 + rng.below(input.length - 1));
  const sorted = [...cuts].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of sorted) {
    out.push(input.subarray(from, c));
    from = c;
  }
  out.push(input.subarray(from));
  return out;
}
