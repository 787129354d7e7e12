import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isScsError } from '../errors.ts';
import { generateDataKey, OVERHEAD, readKeyId, SecretBox } from './envelope.ts';
import { nativeAead, nativeAeadStatus } from './native-aead.ts';

function plainOf(i: number, length = 32): Buffer {
  return Buffer.from(`PPS-${String(i).padStart(length - 4, '0')}`, 'latin1');
}

const owners = (n: number, tag = 'PID'): string[] =>
  Array.from({ length: n }, (_, i) => `${tag}${String(i).padStart(5, '0')}`);

describe('native AES-GCM (native/aead.c)', () => {
  const older = generateDataKey();
  const current = generateDataKey();
  const keys = (): [number, Buffer][] => [
    [1, Buffer.from(older)],
    [2, Buffer.from(current)],
  ];

  it('is built and loaded by npm install on this machine', () => {
    assert.ok(nativeAead !== null, nativeAeadStatus);
    assert.equal(new SecretBox(keys(), 2).batchSealer, 'native');
  });

  it('seals batches that node:crypto opens one by one, and opens in a batch what node:crypto sealed, under current and retired keys', async () => {
    const box = new SecretBox(keys(), 2);
    const jsBox = new SecretBox(keys(), 2, { aead: null });
    const oldJs = new SecretBox([[1, Buffer.from(older)]], 1, { aead: null });
    // Plaintexts of several lengths (a PPS is 32 bytes; passwords differ), owners of several too.
    const names = owners(3000).map((o, i) => (i % 7 === 0 ? `${o}-longer-owner` : o));
    const plains = names.map((_, i) => plainOf(i, 8 + (i % 50)));
    const blobs = await box.sealMany(plains, names);
    for (let i = 0; i < blobs.length; i++) {
      const blob = blobs[i] as Buffer;
      assert.equal(readKeyId(blob), 2);
      assert.equal(blob.length, OVERHEAD + (plains[i] as Buffer).length);
      assert.deepEqual(jsBox.open(blob, names[i] as string), plains[i], `blob ${i}`);
    }
    // The other way round, every third under the retired key.
    const jsBlobs = names.map((o, i) => (i % 3 === 0 ? oldJs : jsBox).seal(plains[i] as Buffer, o));
    const opened = await box.openMany(jsBlobs, names);
    let at = 0;
    for (let i = 0; i < plains.length; i++) {
      const p = plains[i] as Buffer;
      assert.deepEqual(opened.subarray(at, at + p.length), p, `blob ${i}`);
      at += p.length;
    }
    assert.equal(at, opened.length);
  });

  it('follows the GCM standard: node:crypto alone opens a blob with the header and owner as associated data', async () => {
    const key = generateDataKey();
    const box = new SecretBox([[9, Buffer.from(key)]], 9);
    const [blob] = (await box.sealMany([plainOf(1)], ['ABCD1234'])) as [Buffer];
    const d = createDecipheriv('aes-256-gcm', key, blob.subarray(5, 17));
    d.setAAD(Buffer.concat([blob.subarray(0, 5), Buffer.from('ABCD1234')]));
    d.setAuthTag(blob.subarray(17, 33));
    assert.deepEqual(Buffer.concat([d.update(blob.subarray(33)), d.final()]), plainOf(1));
  });

  it('draws a fresh IV for every secret of a batch', async () => {
    const box = new SecretBox(keys(), 2);
    const blobs = await box.sealMany(
      Array.from({ length: 5000 }, () => plainOf(0)),
      Array.from({ length: 5000 }, () => 'SAMEPID1'),
    );
    assert.equal(new Set(blobs.map((b) => b.subarray(5, 17).toString('hex'))).size, 5000);
  });

  it('names the owner of the one blob in a batch that does not open (a flipped bit, another owner, an unknown key) and returns no plaintext', async () => {
    const box = new SecretBox(keys(), 2);
    const names = owners(1000);
    const stranger = new SecretBox([[3, generateDataKey()]], 3, { aead: null });
    const cases: [string, (blobs: Buffer[]) => void][] = [
      [
        'a flipped bit',
        (b) => void ((b[500] as Buffer)[OVERHEAD + 3] = ((b[500] as Buffer)[OVERHEAD + 3] as number) ^ 1),
      ],
      ['a flipped tag bit', (b) => void ((b[500] as Buffer)[20] = ((b[500] as Buffer)[20] as number) ^ 0x80)],
      ['another owner', (b) => void (b[500] = box.seal(plainOf(500), 'SOMEONE1'))],
      ['an unknown key', (b) => void (b[500] = stranger.seal(plainOf(500), names[500] as string))],
      ['another version', (b) => void ((b[500] as Buffer)[0] = 2)],
    ];
    for (const [what, spoil] of cases) {
      const blobs = (
        await box.sealMany(
          names.map((_, i) => plainOf(i)),
          names,
        )
      ).map((b) => Buffer.from(b));
      spoil(blobs);
      await assert.rejects(
        box.openMany(blobs, names),
        (e: unknown) => isScsError(e) && e.code === 'SCS_SECRET_UNREADABLE' && e.message.includes(names[500] as string),
        what,
      );
    }
  });

  it('seals new batches under a key added later (data-key rotation) and still opens the old ones', async () => {
    const box = new SecretBox([[1, Buffer.from(older)]], 1);
    const names = owners(300);
    const before = await box.sealMany(
      names.map((_, i) => plainOf(i)),
      names,
    );
    box.addKeys(keys(), 2);
    const after = await box.sealMany(
      names.map((_, i) => plainOf(i)),
      names,
    );
    assert.equal(readKeyId(before[0] as Buffer), 1);
    assert.equal(readKeyId(after[0] as Buffer), 2);
    const both = await box.openMany([...before, ...after], [...names, ...names]);
    assert.deepEqual(both.subarray(299 * 32, 300 * 32), plainOf(299));
    assert.deepEqual(both.subarray(599 * 32), plainOf(299));
  });

  it('opens a batch exactly as node:crypto opens each blob of it, whatever the blobs hold (differential, random batches)', () => {
    const aead = nativeAead;
    assert.ok(aead !== null, nativeAeadStatus);
    const jsBox = new SecretBox(keys(), 2, { aead: null });
    const contexts = [aead.contexts(Buffer.from(older)), aead.contexts(Buffer.from(current))];
    const ids = Uint32Array.of(1, 2);
    // A blob: a good seal, a good seal with one byte changed, or random bytes (at least the envelope).
    const blob = fc.oneof(
      fc.record({
        kind: fc.constant('good' as const),
        plain: fc.uint8Array({ maxLength: 64 }),
        owner: fc.string({ maxLength: 20 }),
      }),
      fc.record({
        kind: fc.constant('flipped' as const),
        plain: fc.uint8Array({ maxLength: 64 }),
        owner: fc.string({ maxLength: 20 }),
        at: fc.nat(),
        bit: fc.integer({ min: 0, max: 7 }),
      }),
      fc.record({
        kind: fc.constant('random' as const),
        bytes: fc.uint8Array({ minLength: OVERHEAD, maxLength: OVERHEAD + 40 }),
        owner: fc.string({ maxLength: 20 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(blob, { minLength: 1, maxLength: 12 }), (spec) => {
        const blobs = spec.map((b) => {
          if (b.kind === 'random') return Buffer.from(b.bytes);
          const sealed = jsBox.seal(Buffer.from(b.plain), b.owner);
          if (b.kind === 'flipped')
            sealed[b.at % sealed.length] = (sealed[b.at % sealed.length] as number) ^ (1 << b.bit);
          return sealed;
        });
        const owners = spec.map((b) => b.owner);
        const data = Buffer.concat([...blobs, ...owners.map((o) => Buffer.from(o, 'utf8'))]);
        const out = Buffer.alloc(blobs.reduce((n, b) => n + b.length - OVERHEAD, 0));
        const failed = aead.open(
          contexts,
          ids,
          data,
          Uint32Array.from(blobs, (b) => b.length),
          Uint32Array.from(owners, (o) => Buffer.byteLength(o)),
          out,
        );
        let expected = -1;
        const plains: Buffer[] = [];
        for (let i = 0; i < blobs.length && expected === -1; i++) {
          try {
            plains.push(jsBox.open(blobs[i] as Buffer, owners[i] as string));
          } catch {
            expected = i;
          }
        }
        assert.equal(failed, expected);
        if (failed === -1) assert.deepEqual(out, Buffer.concat(plains));
        else
          assert.ok(
            out.every((x) => x === 0),
            'no plaintext after a failure',
          );
      }),
      { numRuns: 500 },
    );
  });

  it('opens blobs of any of a hundred data keys in one batch (years of rotations)', async () => {
    const many = Array.from({ length: 100 }, (_, i) => [i + 1, generateDataKey()] as [number, Buffer]);
    const box = new SecretBox(
      many.map(([id, k]) => [id, Buffer.from(k)] as [number, Buffer]),
      100,
    );
    const names = owners(200);
    const blobs = names.map((o, i) => {
      const [id, k] = many[(i * 37) % 100] as [number, Buffer];
      return new SecretBox([[id, Buffer.from(k)]], id, { aead: null }).seal(plainOf(i), o);
    });
    const out = await box.openMany(blobs, names);
    for (const i of [0, 1, 99, 199]) assert.deepEqual(out.subarray(i * 32, i * 32 + 32), plainOf(i));
  });

  it('refuses arguments whose lengths do not add up instead of reading past a buffer', () => {
    const aead = nativeAead;
    assert.ok(aead !== null, nativeAeadStatus);
    const key = aead.contexts(randomBytes(32));
    const lengths = Uint32Array.of(32, 32);
    const aads = Uint32Array.of(8, 8);
    const ivs = randomBytes(24);
    const out = Buffer.alloc(2 * (OVERHEAD + 32));
    assert.throws(() => aead.seal(key, 1, randomBytes(79), lengths, aads, ivs, out), /lengths do not add up/);
    assert.throws(
      () => aead.seal(key, 1, randomBytes(80), lengths, aads, randomBytes(12), out),
      /lengths do not add up/,
    );
    assert.throws(
      () => aead.seal(key, 1, randomBytes(80), lengths, aads, ivs, out.subarray(1)),
      /lengths do not add up/,
    );
    assert.throws(
      () => aead.seal(key, 1, randomBytes(80), lengths, Uint32Array.of(8), ivs, out),
      /lengths do not add up/,
    );
    assert.throws(() => aead.contexts(randomBytes(16)), /not 32 bytes/);
    const blobs = Buffer.alloc(2 * (OVERHEAD + 32) + 16);
    assert.throws(
      () => aead.open([key], Uint32Array.of(1), blobs, Uint32Array.of(65, 65), aads, Buffer.alloc(63)),
      /lengths do not add up/,
    );
    assert.throws(
      () => aead.open([key], Uint32Array.of(1), blobs, Uint32Array.of(65, 20), Uint32Array.of(8, 53), Buffer.alloc(64)),
      /shorter than its envelope/,
    );
    // Fine, but the blobs are zeros: the first does not open.
    assert.equal(aead.open([key], Uint32Array.of(1), blobs, Uint32Array.of(65, 65), aads, Buffer.alloc(64)), 0);
  });
});
