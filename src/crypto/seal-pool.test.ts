import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isScsError } from '../errors.ts';
import { generateDataKey, OVERHEAD, SecretBox } from './envelope.ts';
import { SealWorker } from './seal-pool.ts';

/** These tests are of the worker: the path batches take where the native AES-GCM is not built. */
const WORKER_ONLY = { aead: null };

function plainOf(i: number): Buffer {
  return Buffer.from(`PPS-${String(i).padStart(28, '0')}`, 'latin1');
}

describe('seal worker: opening batches', () => {
  const older = generateDataKey();
  const current = generateDataKey();

  it('opens a big batch on the worker, including blobs sealed under a retired key, in order', async () => {
    const oldBox = new SecretBox([[1, older]], 1);
    const box = new SecretBox(
      [
        [1, older],
        [2, current],
      ],
      2,
      WORKER_ONLY,
    );
    try {
      const n = 3000;
      const owners = Array.from({ length: n }, (_, i) => `OWNER${String(i).padStart(3, '0')}`);
      // Every third blob under the old key: rotation leaves old rows readable.
      const blobs = owners.map((o, i) => (i % 3 === 0 ? oldBox.seal(plainOf(i), o) : box.seal(plainOf(i), o)));
      const out = await box.openMany(blobs, owners);
      assert.equal(box.batchSealer, 'worker');
      assert.equal(out.length, n * 32);
      for (let i = 0; i < n; i++) assert.deepEqual(out.subarray(i * 32, i * 32 + 32), plainOf(i), `blob ${i}`);
    } finally {
      await box.close();
    }
  });

  it('names the owner of a blob that does not open, whether the batch went to the worker or not', async () => {
    const box = new SecretBox([[2, current]], 2, WORKER_ONLY);
    try {
      for (const n of [10, 1000]) {
        const owners = Array.from({ length: n }, (_, i) => `PID${String(i).padStart(5, '0')}`);
        const blobs = owners.map((o, i) => box.seal(plainOf(i), o));
        const bad = Math.floor(n / 2);
        const tampered = Buffer.from(blobs[bad] as Buffer);
        tampered[OVERHEAD] = (tampered[OVERHEAD] as number) ^ 1;
        blobs[bad] = tampered;
        await assert.rejects(box.openMany(blobs, owners), (e: unknown) => {
          assert.ok(isScsError(e));
          assert.equal(e.code, 'SCS_SECRET_UNREADABLE');
          assert.match(e.message, new RegExp(owners[bad] as string));
          return true;
        });
        // A blob moved to another owner does not open either (the owner is the associated data).
        const swapped = [...owners];
        swapped[0] = owners[1] as string;
        swapped[1] = owners[0] as string;
        await assert.rejects(
          box.openMany(
            owners.map((o, i) => box.seal(plainOf(i), o)),
            swapped,
          ),
          (e: unknown) => isScsError(e) && e.code === 'SCS_SECRET_UNREADABLE',
        );
      }
      // The worker survives a batch that failed: the next batch still goes to it.
      const owners = Array.from({ length: 500 }, (_, i) => `OK${i}`);
      const out = await box.openMany(
        owners.map((o, i) => box.seal(plainOf(i), o)),
        owners,
      );
      assert.deepEqual(out.subarray(499 * 32), plainOf(499));
      assert.equal(box.batchSealer, 'worker');
    } finally {
      await box.close();
    }
  });

  it('opens inline after close, with the same result', async () => {
    const box = new SecretBox([[2, current]], 2, WORKER_ONLY);
    await box.close();
    const owners = Array.from({ length: 600 }, (_, i) => `P${i}`);
    const out = await box.openMany(
      owners.map((o, i) => box.seal(plainOf(i), o)),
      owners,
    );
    assert.deepEqual(out.subarray(0, 32), plainOf(0));
    assert.deepEqual(out.subarray(599 * 32), plainOf(599));
  });
});

describe('seal worker: threads', () => {
  const key = generateDataKey();

  /** Blobs of `owners` packed as SealWorker.open takes them, with the plaintexts they hold. */
  function packed(box: SecretBox, owners: readonly string[]): { data: Buffer; lengths: Uint32Array; aad: Uint32Array } {
    const blobs = owners.map((o, i) => box.seal(plainOf(i), o));
    const data = Buffer.allocUnsafeSlow(blobs.reduce((n, b) => n + b.length, 0) + Buffer.byteLength(owners.join('')));
    let at = 0;
    for (const b of blobs) at += b.copy(data, at);
    data.write(owners.join(''), at);
    return {
      data,
      lengths: Uint32Array.from(blobs, (b) => b.length),
      aad: Uint32Array.from(owners, (o) => Buffer.byteLength(o)),
    };
  }

  it('starts a second thread only for a batch sent while the first is busy, and answers each batch with its own plaintexts', async () => {
    const box = new SecretBox([[1, key]], 1);
    const worker = new SealWorker(1, new Map([[1, Buffer.from(key)]]), 2);
    try {
      const owners = (tag: string): string[] =>
        Array.from({ length: 400 }, (_, i) => `${tag}${String(i).padStart(4, '0')}`);
      // One at a time: one thread.
      for (const tag of ['A', 'B']) {
        const p = packed(box, owners(tag));
        const out = await worker.open(p.data, p.lengths, p.aad);
        assert.deepEqual(out.subarray(399 * 32), plainOf(399));
      }
      assert.equal(worker.threads, 1);
      // Three at once: a second thread starts; no third (the limit is 2).
      const batches = ['C', 'D', 'E'].map((tag) => packed(box, owners(tag)));
      const outs = await Promise.all(batches.map((p) => worker.open(p.data, p.lengths, p.aad)));
      assert.equal(worker.threads, 2);
      for (const out of outs) {
        assert.equal(out.length, 400 * 32);
        for (const i of [0, 199, 399]) assert.deepEqual(out.subarray(i * 32, i * 32 + 32), plainOf(i));
      }
      // A blob that does not open fails its own batch only.
      const good = packed(box, owners('F'));
      const bad = packed(box, owners('G'));
      bad.data[OVERHEAD] = (bad.data[OVERHEAD] as number) ^ 1;
      const [ok, failed] = await Promise.allSettled([
        worker.open(good.data, good.lengths, good.aad),
        worker.open(bad.data, bad.lengths, bad.aad),
      ]);
      assert.equal(ok.status, 'fulfilled');
      assert.equal(failed.status, 'rejected');
    } finally {
      await worker.close();
      await box.close();
    }
  });
});
