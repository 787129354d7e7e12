import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isScsError } from '../../errors.ts';
import { Secret } from '../../secret.ts';
import { ALPHABET, checkChar } from '../checksum.ts';
import { generatePid, generatePps } from '../generate.ts';
import type { Pid } from '../pid.ts';
import type { Pps } from '../pps.ts';
import {
  BUNDLE_MAGIC,
  BundleDecoder,
  BundleEncoder,
  type BundleEncoderOptions,
  type BundleKdf,
  type BundleRecord,
  DEFAULT_SCRYPT_PARAMS,
  type ScryptParams,
  scryptKdf,
} from './bundle.ts';

/** The real scrypt, remembered per (passphrase, salt, parameters) so thousands of decodes stay fast. */
const memo = new Map<string, Buffer>();
const memoKdf: BundleKdf = (passphrase, salt, params) => {
  const key = `${passphrase.reveal()}|${salt.toString('hex')}|${params.log2N}/${params.r}/${params.p}`;
  let keys = memo.get(key);
  if (keys === undefined) {
    keys = scryptKdf(passphrase, salt, params);
    memo.set(key, keys);
  }
  return keys;
};

/**
 * For the random round trip, where every bundle has a fresh salt: HKDF stands in for scrypt through
 * the documented `kdf` hook, so the property exercises framing and encryption, not key stretching.
 */
const hkdfKdf: BundleKdf = (passphrase, salt) =>
  Buffer.from(hkdfSync('sha256', passphrase.reveal(), salt, 'amt-scs bundle test', 64));

const FAST: ScryptParams = { log2N: 15, r: 8, p: 1 };
const PASS = new Secret('correct horse battery staple');
const CHUNK = 256;

const symbol = fc.constantFrom(...ALPHABET.split(''));
const pidArb = fc.array(symbol, { minLength: 7, maxLength: 7 }).map((a) => {
  const body = a.join('');
  return (body + checkChar(body)) as Pid;
});
const ppsArb = fc
  .array(fc.array(symbol, { minLength: 3, maxLength: 3 }), { minLength: 8, maxLength: 8 })
  .map((groups) => groups.map((g) => g.join('') + checkChar(g.join(''))).join('') as Pps);
const recordArb: fc.Arbitrary<BundleRecord> = fc
  .record({
    pid: pidArb,
    pps: ppsArb,
    batch: fc.string({ maxLength: 40 }),
    state: fc.constantFrom('available' as const, 'exported' as const),
    created: fc.integer({ min: 0, max: 4_102_444_800_000 }),
  })
  .map((r) => ({ pid: r.pid, pps: new Secret(r.pps), batch: r.batch, state: r.state, createdAt: new Date(r.created) }));

function rec(i: number): BundleRecord {
  return {
    pid: generatePid(),
    pps: new Secret(generatePps()),
    batch: i % 3 === 0 ? '' : `batch ${i % 3} – Zürich`,
    state: i % 2 === 0 ? 'available' : 'exported',
    createdAt: new Date(1_700_000_000_000 + i * 1000),
  };
}

interface Built {
  readonly file: Buffer;
  readonly header: Buffer;
  readonly chunks: readonly Buffer[];
  readonly bundleId: string;
}

function build(records: readonly BundleRecord[], over: Partial<BundleEncoderOptions> = {}): Built {
  const enc = new BundleEncoder({
    passphrase: PASS,
    recordCount: records.length,
    sourceName: 'scs-a.example',
    kdfParams: FAST,
    chunkSize: CHUNK,
    createdAt: new Date(1_750_000_000_000),
    kdf: memoKdf,
    ...over,
  });
  const header = enc.start();
  const chunks: Buffer[] = [];
  for (let i = 0; i < records.length; i += 5) chunks.push(...enc.add(records.slice(i, i + 5)));
  chunks.push(enc.finish());
  return { file: Buffer.concat([header, ...chunks]), header, chunks, bundleId: enc.bundleId };
}

function decodeParts(
  parts: readonly Buffer[],
  passphrase = PASS,
  kdf = memoKdf,
): { records: BundleRecord[]; decoder: BundleDecoder } {
  const decoder = new BundleDecoder({ passphrase, kdf });
  const records: BundleRecord[] = [];
  for (const p of parts) records.push(...decoder.push(p));
  records.push(...decoder.finish());
  return { records, decoder };
}

function flipBit(buf: Buffer, bit: number): void {
  buf[bit >> 3] = (buf[bit >> 3] as number) ^ (1 << (bit & 7));
}

function plain(records: readonly BundleRecord[]): unknown[] {
  return records.map((r) => [r.pid, r.pps.reveal(), r.batch, r.state, r.createdAt.getTime()]);
}

function codeOf(parts: readonly Buffer[], passphrase = PASS): { code: string; message: string } {
  try {
    decodeParts(parts, passphrase);
  } catch (e) {
    assert.ok(isScsError(e), String(e));
    return { code: e.code, message: e.message };
  }
  assert.fail('expected the bundle to be rejected');
}

const RECORDS = Array.from({ length: 14 }, (_, i) => rec(i));
const SMALL = build(RECORDS);

describe('bundle layout', () => {
  it('writes the documented header at its offsets and full-size chunks', () => {
    const h = SMALL.header;
    assert.ok(h.subarray(0, 8).equals(BUNDLE_MAGIC));
    assert.equal(h.subarray(0, 8).toString('latin1'), '\x89SCSBDL\n');
    assert.equal(h.readUInt16BE(8), 1, 'format version');
    assert.equal(h.readUInt16BE(10), h.length, 'header length');
    assert.equal(h.length, 70 + 'scs-a.example'.length + 32);
    assert.deepEqual([h[12], h[13], h[14], h[15]], [1, 15, 8, 1], 'scrypt, log2N, r, p');
    assert.equal(h.subarray(32, 48).toString('hex'), SMALL.bundleId.replaceAll('-', ''));
    assert.equal(h.readUInt32BE(48) * 2 ** 32 + h.readUInt32BE(52), 1_750_000_000_000, 'created ms');
    assert.equal(h.readUInt32BE(56) * 2 ** 32 + h.readUInt32BE(60), 14, 'record count');
    assert.equal(h.readUInt32BE(64), CHUNK, 'chunk size');
    assert.equal(h.readUInt16BE(68), 13, 'source name length');
    assert.equal(h.toString('utf8', 70, 83), 'scs-a.example');
    // 14 records of 50 + batch bytes each, in 256-byte chunks, every chunk sealed to 256 + 16
    const plainBytes = RECORDS.reduce((n, r) => n + 50 + Buffer.byteLength(r.batch), 0);
    assert.equal(SMALL.chunks.length, Math.ceil(plainBytes / CHUNK));
    assert.ok(SMALL.chunks.every((c) => c.length === CHUNK + 16));
  });

  it('keeps PPS values out of the file', () => {
    for (const r of RECORDS) assert.equal(SMALL.file.indexOf(r.pps.reveal()), -1);
  });
});

describe('bundle round trip', () => {
  it('decodes records and an authenticated header, exposed as soon as the header is read', () => {
    const decoder = new BundleDecoder({ passphrase: PASS, kdf: memoKdf });
    assert.equal(decoder.header, undefined);
    assert.deepEqual(decoder.push(SMALL.header.subarray(0, 20)), []);
    assert.equal(decoder.header, undefined);
    assert.deepEqual(decoder.push(SMALL.header.subarray(20)), []);
    assert.deepEqual(decoder.header, {
      formatVersion: 1,
      kdf: FAST,
      bundleId: SMALL.bundleId,
      createdAt: new Date(1_750_000_000_000),
      recordCount: 14,
      chunkSize: CHUNK,
      sourceName: 'scs-a.example',
      headerBytes: SMALL.header.length,
    });
    const records = [...decoder.push(SMALL.file.subarray(SMALL.header.length)), ...decoder.finish()];
    assert.deepEqual(plain(records), plain(RECORDS));
    assert.ok(records.every((r) => r.pps instanceof Secret));
  });

  it('holds back the last full chunk until it knows whether another follows', () => {
    const decoder = new BundleDecoder({ passphrase: PASS, kdf: memoKdf });
    const first = decoder.push(Buffer.concat([SMALL.header, ...SMALL.chunks.slice(0, 2)]));
    const n = first.length;
    assert.ok(n > 0 && n < RECORDS.length);
    assert.ok(decoder.push(SMALL.chunks[2] ?? Buffer.alloc(0)).length > 0, 'chunk 2 released by chunk 3');
  });

  it('decodes the same from every split point', () => {
    const expected = plain(RECORDS);
    for (let i = 0; i <= SMALL.file.length; i++) {
      const { records } = decodeParts([SMALL.file.subarray(0, i), SMALL.file.subarray(i)]);
      assert.deepEqual(plain(records), expected, `split at ${i}`);
    }
  });

  it('round-trips random records in random pieces', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 25 }), fc.array(fc.nat(3000), { maxLength: 6 }), (records, cuts) => {
        const { file } = build(records, { sourceName: 'ß-source ✓', kdf: hkdfKdf });
        const points = [...new Set(cuts.map((c) => c % (file.length + 1)))].sort((a, b) => a - b);
        const parts: Buffer[] = [];
        let at = 0;
        for (const p of points) {
          parts.push(file.subarray(at, p));
          at = p;
        }
        parts.push(file.subarray(at));
        const { records: out, decoder } = decodeParts(parts, PASS, hkdfKdf);
        assert.deepEqual(plain(out), plain(records));
        assert.equal(decoder.header?.sourceName, 'ß-source ✓');
      }),
      { numRuns: 60 },
    );
  });

  it('writes and reads an empty bundle as one padded final chunk', () => {
    const empty = build([]);
    assert.equal(empty.chunks.length, 1);
    assert.deepEqual(decodeParts([empty.file]).records, []);
  });

  it('works with the default scrypt parameters and chunk size', () => {
    const enc = new BundleEncoder({ passphrase: PASS, recordCount: 2, sourceName: 'scs-a' });
    const file = Buffer.concat([enc.start(), ...enc.add([rec(1), rec(2)]), enc.finish()]);
    assert.equal(file.length, 70 + 5 + 32 + 64 * 1024 + 16);
    const decoder = new BundleDecoder({ passphrase: PASS });
    const out = [...decoder.push(file), ...decoder.finish()];
    assert.equal(out.length, 2);
    assert.deepEqual(decoder.header?.kdf, DEFAULT_SCRYPT_PARAMS);
  });
});

describe('bundle authentication', () => {
  it('gives one answer for a wrong passphrase and for tampering', () => {
    const wrong = codeOf([SMALL.file], new Secret('correct horse battery stapler'));
    assert.equal(wrong.code, 'SCS_BUNDLE_AUTH_FAILED');
    const flipped = Buffer.from(SMALL.file);
    flipBit(flipped, (SMALL.header.length + 300) * 8);
    const tampered = codeOf([flipped]);
    assert.deepEqual(tampered, wrong);
    assert.equal(wrong.message, 'bundle does not authenticate: the passphrase is wrong or the file was changed');
  });

  it('rejects a wrong passphrase at the header, before any chunk', () => {
    const decoder = new BundleDecoder({ passphrase: new Secret('nope'), kdf: memoKdf });
    assert.throws(
      () => decoder.push(SMALL.header),
      (e) => isScsError(e, 'SCS_BUNDLE_AUTH_FAILED'),
    );
    assert.equal(decoder.header, undefined);
    assert.throws(() => decoder.push(Buffer.alloc(1)), /used after it reported an error/);
  });

  it('rejects any single bit flip anywhere in the file', () => {
    fc.assert(
      fc.property(fc.nat(SMALL.file.length * 8 - 1), (bit) => {
        const f = Buffer.from(SMALL.file);
        flipBit(f, bit);
        const { code } = codeOf([f]);
        if (bit >> 3 >= SMALL.header.length) assert.equal(code, 'SCS_BUNDLE_AUTH_FAILED');
        else assert.ok(code === 'SCS_BUNDLE_MALFORMED' || code === 'SCS_BUNDLE_AUTH_FAILED', code);
      }),
      { numRuns: 400 },
    );
  });

  it('rejects reordered, duplicated, dropped and appended chunks', () => {
    const [c0, c1, c2, c3] = SMALL.chunks;
    assert.ok(c0 && c1 && c2 && c3);
    const h = SMALL.header;
    const rest = SMALL.chunks.slice(4);
    const cases: [string, Buffer[], string][] = [
      ['swapped', [h, c1, c0, c2, c3, ...rest], 'SCS_BUNDLE_AUTH_FAILED'],
      ['duplicated', [h, c0, c0, c1, c2, c3, ...rest], 'SCS_BUNDLE_AUTH_FAILED'],
      ['middle dropped', [h, c0, c2, c3, ...rest], 'SCS_BUNDLE_AUTH_FAILED'],
      ['final repeated', [h, ...SMALL.chunks, SMALL.chunks.at(-1) ?? c0], 'SCS_BUNDLE_AUTH_FAILED'],
      ['bytes appended', [h, ...SMALL.chunks, Buffer.from('x')], 'SCS_BUNDLE_AUTH_FAILED'],
      ['final dropped', [h, ...SMALL.chunks.slice(0, -1)], 'SCS_BUNDLE_MALFORMED'],
    ];
    for (const [name, parts, code] of cases) assert.equal(codeOf(parts).code, code, name);
    // a chunk from another bundle under the same passphrase does not fit either
    const other = build(RECORDS);
    assert.equal(codeOf([h, other.chunks[0] ?? c0, c1, c2, c3, ...rest]).code, 'SCS_BUNDLE_AUTH_FAILED');
  });

  it('reports every truncation as truncated (SCS_BUNDLE_MALFORMED)', () => {
    for (let cut = 0; cut < SMALL.file.length; cut++) {
      const { code, message } = codeOf([SMALL.file.subarray(0, cut)]);
      assert.equal(code, 'SCS_BUNDLE_MALFORMED', `cut at ${cut}: ${message}`);
      assert.match(message, cut === 0 ? /the file is empty/ : /truncated/, `cut at ${cut}`);
    }
  });
});

describe('bundle malformations', () => {
  it('says "not a bundle" from the first wrong byte', () => {
    const decoder = new BundleDecoder({ passphrase: PASS, kdf: memoKdf });
    assert.throws(
      () => decoder.push(Buffer.from('P')),
      (e) => isScsError(e, 'SCS_BUNDLE_MALFORMED') && /not an amt-scs transfer bundle/.test(e.message),
    );
  });

  it('names an unsupported version, a bad header length and weak or unknown key derivation', () => {
    const damaged = (at: number, write: (b: Buffer) => void): string => {
      const f = Buffer.from(SMALL.file);
      write(f.subarray(at));
      return codeOf([f]).message;
    };
    assert.match(
      damaged(8, (b) => b.writeUInt16BE(2, 0)),
      /format version 2 is not supported \(this server reads 1\)/,
    );
    assert.match(
      damaged(10, (b) => b.writeUInt16BE(50, 0)),
      /header length 50 is outside 102-1126/,
    );
    assert.match(
      damaged(12, (b) => (b[0] = 2)),
      /key derivation 2 is not supported/,
    );
    assert.match(
      damaged(13, (b) => (b[0] = 10)),
      /scrypt log2\(N\) 10 is outside 15-20/,
    );
    assert.match(
      damaged(13, (b) => ((b[0] = 20), (b[1] = 16))),
      /need more than 256 MiB/,
    );
    assert.match(
      damaged(64, (b) => b.writeUInt32BE(100, 0)),
      /chunk size 100 is outside/,
    );
    assert.match(
      damaged(68, (b) => b.writeUInt16BE(14, 0)),
      /source name length 14 does not match the header length/,
    );
  });
});

describe('bundle encoder input checks', () => {
  const opts = { passphrase: PASS, sourceName: 'a', kdfParams: FAST, chunkSize: CHUNK, kdf: memoKdf };
  const inputError = (fn: () => unknown, pattern: RegExp): void => {
    assert.throws(fn, (e) => isScsError(e, 'SCS_FORMAT_INPUT_INVALID') && pattern.test(e.message));
  };

  it('holds the writer to the record count in the header', () => {
    const over = new BundleEncoder({ ...opts, recordCount: 1 });
    over.start();
    inputError(() => over.add([rec(1), rec(2)]), /more records than the 1 declared/);
    const under = new BundleEncoder({ ...opts, recordCount: 2 });
    under.start();
    under.add([rec(1)]);
    inputError(() => under.finish(), /1 records given, 2 declared/);
  });

  it('refuses values the format cannot carry', () => {
    const enc = new BundleEncoder({ ...opts, recordCount: 5 });
    enc.start();
    inputError(() => enc.add([{ ...rec(1), batch: 'x'.repeat(256) }]), /batch name is longer than 255 bytes/);
    inputError(
      () => enc.add([{ ...rec(1), pid: 'ABCD-EFGH' as Pid }]),
      /record 1: the PID or PPS is not a valid value/,
    );
    inputError(() => enc.add([{ ...rec(1), state: 'consumed' as 'available' }]), /state must be available or exported/);
    inputError(() => enc.add([{ ...rec(1), createdAt: new Date(Number.NaN) }]), /invalid creation time/);
    inputError(() => new BundleEncoder({ ...opts, recordCount: 1, chunkSize: 100 }), /chunk size must be/);
    inputError(
      () => new BundleEncoder({ ...opts, recordCount: 1, kdfParams: { log2N: 14, r: 8, p: 1 } }),
      /log2\(N\) 14/,
    );
    inputError(() => new BundleEncoder({ ...opts, recordCount: -1 }), /record count/);
    inputError(() => new BundleEncoder({ ...opts, recordCount: 1, sourceName: 's'.repeat(1025) }), /source name/);
  });

  it('needs a passphrase on both sides', () => {
    assert.throws(
      () => new BundleEncoder({ ...opts, recordCount: 0, passphrase: new Secret('') }),
      (e) => isScsError(e, 'SCS_PASSPHRASE_MISSING'),
    );
    assert.throws(
      () => new BundleDecoder({ passphrase: new Secret('') }),
      (e) => isScsError(e, 'SCS_PASSPHRASE_MISSING'),
    );
  });
});
