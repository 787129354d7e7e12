import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isScsError } from '../errors.ts';
import { ALPHABET, checkChar } from '../psk/checksum.ts';
import type { Pid } from '../psk/pid.ts';
import {
  decodeHello,
  HELLO_MAX_LENGTH,
  HelloDecoder,
  malformedReason,
  type CertHashAlgorithm,
  type Hello,
  type HelloMalformedReason,
} from './decode.ts';
import { formatUuid, parseUuid } from './uuid.ts';

/**
 * A test-only encoder written from protocol.md §1a/§1b, independent of decode.ts, so that a
 * round trip checks the decoder against the table rather than against itself.
 */
const ALG_ID: Record<CertHashAlgorithm, number> = { sha1: 1, sha256: 2, sha384: 3 };

function encode(h: Hello): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt16LE(h.adminCredentialsSet ? 1 : 0, 0);
  head.writeUInt16LE(h.version, 2);
  head.writeUInt32LE(h.retryCount, 4);
  parseUuid(h.uuid).copy(head, 8);
  if (h.version === 2) return Buffer.concat([head, Buffer.from(h.pid, 'ascii')]);
  const parts = [head, Buffer.from([h.hashes.length])];
  for (const x of h.hashes) {
    const bytes = Buffer.from(x.hash, 'hex');
    parts.push(Buffer.from([ALG_ID[x.algorithm], bytes.length]), bytes);
  }
  return Buffer.concat(parts);
}

const PID = 'ABCDEFG1' as Pid;
const VALID_PID = (PID.slice(0, 7) + checkChar(PID.slice(0, 7))) as Pid;
const UUID = '03020100-0504-0706-0809-0a0b0c0d0e0f';

const v2: Hello = { version: 2, adminCredentialsSet: true, retryCount: 3, uuid: UUID, pid: VALID_PID };
const v3: Hello = {
  version: 3,
  adminCredentialsSet: false,
  retryCount: 14,
  uuid: UUID,
  hashes: [
    { algorithm: 'sha1', hash: 'aa'.repeat(20) },
    { algorithm: 'sha256', hash: 'bb'.repeat(32) },
    { algorithm: 'sha384', hash: 'cc'.repeat(48) },
  ],
};

function reasonOf(fn: () => unknown): { reason: HelloMalformedReason | undefined; message: string } {
  try {
    fn();
  } catch (e) {
    assert.ok(isScsError(e, 'SCS_HELLO_MALFORMED'), `expected SCS_HELLO_MALFORMED, got ${String(e)}`);
    return { reason: malformedReason(e), message: e.message };
  }
  assert.fail('expected the hello to be refused');
}

function decodeInPieces(bytes: Buffer, cuts: readonly number[]): Hello {
  const d = new HelloDecoder();
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    d.push(bytes.subarray(from, cut));
    from = cut;
  }
  return d.end();
}

describe('UUID text form (§1c)', () => {
  it('prints bytes 00..0f with the first three groups byte-reversed', () => {
    const bytes = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    assert.equal(formatUuid(bytes), '03020100-0504-0706-0809-0a0b0c0d0e0f');
    assert.deepEqual(parseUuid('03020100-0504-0706-0809-0A0B0C0D0E0F'), bytes);
  });

  it('round-trips any 16 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        assert.deepEqual(parseUuid(formatUuid(bytes)), Buffer.from(bytes));
      }),
    );
  });

  it('refuses text that is not 8-4-4-4-12 hex digits', () => {
    assert.throws(() => parseUuid('03020100-0504-0706-0809'), RangeError);
    assert.throws(() => parseUuid('0302010g-0504-0706-0809-0a0b0c0d0e0f'), RangeError);
  });
});

describe('hello decoder: valid messages', () => {
  it('decodes a 32-byte version 2 hello field by field', () => {
    const bytes = Buffer.concat([
      Buffer.from([1, 0, 2, 0, 3, 0, 0, 0]),
      Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'),
      Buffer.from(VALID_PID, 'ascii'),
    ]);
    assert.equal(bytes.length, 32);
    assert.deepEqual(decodeHello(bytes), v2);
  });

  it('decodes a version 3 hello with SHA-1, SHA-256 and SHA-384 hashes', () => {
    const bytes = encode(v3);
    assert.equal(bytes.length, 25 + 22 + 34 + 50);
    assert.deepEqual(decodeHello(bytes), v3);
  });

  it('accepts a version 3 hello that lists no hash', () => {
    const h: Hello = { ...v3, hashes: [] };
    assert.deepEqual(decodeHello(encode(h)), h);
  });

  it('decodes a version 2 hello split in two at every byte boundary', () => {
    const bytes = encode(v2);
    for (let cut = 0; cut <= bytes.length; cut++) assert.deepEqual(decodeInPieces(bytes, [cut]), v2, `cut at ${cut}`);
  });

  it('decodes a version 2 hello split in three at every pair of boundaries', () => {
    const bytes = encode(v2);
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) assert.deepEqual(decodeInPieces(bytes, [i, j]), v2, `cuts ${i},${j}`);
    }
  });

  it('decodes a version 3 hello split in two at every byte boundary, and one byte at a time', () => {
    const bytes = encode(v3);
    for (let cut = 0; cut <= bytes.length; cut++) assert.deepEqual(decodeInPieces(bytes, [cut]), v3, `cut at ${cut}`);
    const everyByte = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
    assert.deepEqual(decodeInPieces(bytes, everyByte), v3);
  });

  it('reports completeness only once the last byte has arrived', () => {
    const bytes = encode(v3);
    const d = new HelloDecoder();
    d.push(bytes.subarray(0, bytes.length - 1));
    assert.equal(d.complete, false);
    d.push(bytes.subarray(bytes.length - 1));
    assert.equal(d.complete, true);
    assert.equal(d.bytesReceived, bytes.length);
  });
});

describe('hello decoder: every malformation is named', () => {
  const base = encode(v2);
  const patched = (offset: number, ...values: number[]): Buffer => {
    const b = Buffer.from(base);
    values.forEach((v, i) => (b[offset + i] = v));
    return b;
  };

  const cases: { name: string; bytes: Buffer; reason: HelloMalformedReason; says: RegExp }[] = [
    { name: 'no byte at all', bytes: Buffer.alloc(0), reason: 'empty', says: /without sending a byte/ },
    { name: 'AdminCredentialsSet = 2', bytes: patched(0, 2, 0), reason: 'bad-admin-credentials-set', says: /is 2/ },
    { name: 'AdminCredentialsSet = 0x0100', bytes: patched(0, 0, 1), reason: 'bad-admin-credentials-set', says: /256/ },
    { name: 'InterfaceVersion 1', bytes: patched(2, 1, 0), reason: 'unknown-version', says: /InterfaceVersion is 1/ },
    { name: 'InterfaceVersion 4', bytes: patched(2, 4, 0), reason: 'unknown-version', says: /not 2 \(PSK\) or 3/ },
    { name: 'a lowercase PID byte', bytes: patched(26, 0x61), reason: 'bad-pid', says: /PID byte 3 is 0x61/ },
    { name: 'a NUL in the PID', bytes: patched(31, 0), reason: 'bad-pid', says: /PID byte 8 is 0x00/ },
    {
      name: 'a wrong PID check character',
      bytes: patched(31, VALID_PID.charCodeAt(7) === 0x30 ? 0x31 : 0x30),
      reason: 'bad-pid',
      says: /check character/,
    },
    { name: 'a v2 hello cut at 17 bytes', bytes: base.subarray(0, 17), reason: 'truncated', says: /after 17 of 32/ },
    { name: 'a v2 hello cut at 1 byte', bytes: base.subarray(0, 1), reason: 'truncated', says: /after 1 of/ },
    {
      name: 'one byte after a v2 hello',
      bytes: Buffer.concat([base, Buffer.from([0])]),
      reason: 'trailing-bytes',
      says: /1 byte/,
    },
    {
      name: 'a hello followed by 20 KB',
      bytes: Buffer.concat([base, Buffer.alloc(20_000)]),
      reason: 'too-long',
      says: new RegExp(`more than ${HELLO_MAX_LENGTH}`),
    },
  ];

  const v3Bytes = encode(v3);
  const v3Patched = (offset: number, value: number): Buffer => {
    const b = Buffer.from(v3Bytes);
    b[offset] = value;
    return b;
  };
  cases.push(
    {
      name: 'hash algorithm 4',
      bytes: v3Patched(25, 4),
      reason: 'bad-hash-algorithm',
      says: /hash 1 of 3: algorithm 4/,
    },
    { name: 'hash algorithm 0', bytes: v3Patched(25 + 22, 0), reason: 'bad-hash-algorithm', says: /hash 2 of 3/ },
    {
      name: 'a SHA-256 entry of 20 bytes',
      bytes: v3Patched(25 + 22 + 1, 20),
      reason: 'bad-hash-length',
      says: /length 20 does not match SHA-256 \(32\)/,
    },
    {
      name: 'a hash count past the end',
      bytes: v3Patched(24, 4),
      reason: 'hash-count-past-end',
      says: /hash count 4 runs past the end/,
    },
    {
      name: 'a hash cut in the middle',
      bytes: v3Bytes.subarray(0, v3Bytes.length - 10),
      reason: 'hash-count-past-end',
      says: /inside hash 3/,
    },
    {
      name: 'a v3 hello cut before the count',
      bytes: v3Bytes.subarray(0, 24),
      reason: 'truncated',
      says: /at least 25/,
    },
    {
      name: 'bytes after the last hash',
      bytes: Buffer.concat([v3Bytes, Buffer.from([1, 2, 3])]),
      reason: 'trailing-bytes',
      says: /3 byte\(s\) follow the end of a version 3 hello/,
    },
    {
      name: 'a count of 1 followed by two hashes',
      bytes: v3Patched(24, 1),
      reason: 'trailing-bytes',
      says: /version 3 hello of 47 bytes/,
    },
  );

  for (const c of cases) {
    it(`refuses ${c.name} as ${c.reason}`, () => {
      const { reason, message } = reasonOf(() => decodeHello(c.bytes));
      assert.equal(reason, c.reason);
      assert.match(message, c.says);
    });
  }

  it('refuses garbage at the first bad byte, before the peer closes', () => {
    const d = new HelloDecoder();
    d.push(Buffer.from([0, 0]));
    const { reason } = reasonOf(() => d.push(Buffer.from([9, 0])));
    assert.equal(reason, 'unknown-version');
  });

  it('keeps failing with the same error after a failure', () => {
    const d = new HelloDecoder();
    let first: unknown;
    try {
      d.push(Buffer.from([7, 0]));
    } catch (e) {
      first = e;
    }
    assert.ok(first);
    assert.throws(
      () => d.push(Buffer.from([0])),
      (e) => e === first,
    );
    assert.throws(
      () => d.end(),
      (e) => e === first,
    );
  });
});

describe('hello decoder: properties', () => {
  const symbol = fc.constantFrom(...ALPHABET.split(''));
  const pidArb = fc
    .array(symbol, { minLength: 7, maxLength: 7 })
    .map((a) => (a.join('') + checkChar(a.join(''))) as Pid);
  const uuidArb = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => formatUuid(b));
  const common = {
    adminCredentialsSet: fc.boolean(),
    retryCount: fc.nat({ max: 0xffffffff }),
    uuid: uuidArb,
  };
  const hashArb = fc.constantFrom<CertHashAlgorithm>('sha1', 'sha256', 'sha384').chain((algorithm) => {
    const length = { sha1: 20, sha256: 32, sha384: 48 }[algorithm];
    return fc
      .uint8Array({ minLength: length, maxLength: length })
      .map((b) => ({ algorithm, hash: Buffer.from(b).toString('hex') }));
  });
  // fc.record builds null-prototype objects; spread them so deepEqual compares like with like.
  const helloArb: fc.Arbitrary<Hello> = fc.oneof(
    fc.record({ version: fc.constant(2 as const), ...common, pid: pidArb }).map((r): Hello => ({ ...r })),
    fc
      .record({ version: fc.constant(3 as const), ...common, hashes: fc.array(hashArb, { maxLength: 20 }) })
      .map((r): Hello => ({ ...r })),
  );
  const cutsFor = (length: number) =>
    fc.uniqueArray(fc.integer({ min: 0, max: length }), { maxLength: 6 }).map((a) => a.sort((x, y) => x - y));

  it('round-trips every valid hello, however it is split', () => {
    fc.assert(
      fc.property(
        helloArb.chain((h) => fc.tuple(fc.constant(h), cutsFor(encode(h).length))),
        ([h, cuts]) => {
          assert.deepEqual(decodeInPieces(encode(h), cuts), h);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never throws anything but SCS_HELLO_MALFORMED on random bytes', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 400 }).chain((b) => fc.tuple(fc.constant(Buffer.from(b)), cutsFor(b.length))),
        ([bytes, cuts]) => {
          try {
            decodeInPieces(bytes, cuts);
          } catch (e) {
            assert.ok(isScsError(e, 'SCS_HELLO_MALFORMED'), String(e));
            assert.ok(malformedReason(e));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('never throws anything but SCS_HELLO_MALFORMED on valid headers followed by random bytes', () => {
    const headArb = fc.tuple(fc.constantFrom(0, 1), fc.constantFrom(2, 3), fc.uint8Array({ maxLength: 300 }));
    fc.assert(
      fc.property(headArb, ([acs, version, rest]) => {
        const bytes = Buffer.concat([Buffer.from([acs, 0, version, 0]), Buffer.from(rest)]);
        try {
          decodeHello(bytes);
        } catch (e) {
          assert.ok(isScsError(e, 'SCS_HELLO_MALFORMED'), String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
