import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isScsError } from '../errors.ts';
import { Secret } from '../secret.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/store.ts';
import { ALPHABET } from './checksum.ts';
import { generatePid, generatePps } from './generate.ts';
import { parsePid } from './pid.ts';
import { parsePps } from './pps.ts';
import { generatePsks, listPsks, PairSource, revokePsks, type DrawnPsk } from './service.ts';

describe('PairSource', () => {
  it('draws pairs that always pass Intel check characters', () => {
    const source = new PairSource();
    for (let i = 0; i < 20_000; i++) {
      const { pid, pps } = source.next();
      assert.equal(parsePid(pid), pid);
      assert.equal(parsePps(pps), pps);
    }
  });

  it('draws uniform symbols (chi-square over the free characters of 20,000 pairs)', () => {
    const source = new PairSource();
    const counts = new Map<string, number>();
    let n = 0;
    for (let i = 0; i < 20_000; i++) {
      const { pid, pps } = source.next();
      const free = pid.slice(0, 7) + [0, 1, 2, 3, 4, 5, 6, 7].map((g) => pps.slice(g * 4, g * 4 + 3)).join('');
      for (const c of free) counts.set(c, (counts.get(c) ?? 0) + 1);
      n += free.length;
    }
    assert.equal(counts.size, 36);
    const expected = n / 36;
    let chi2 = 0;
    for (const c of ALPHABET) chi2 += ((counts.get(c) ?? 0) - expected) ** 2 / expected;
    // 35 degrees of freedom: P(chi2 > 75) < 1e-4.
    assert.ok(chi2 < 75, `chi-square ${chi2.toFixed(1)}`);
  });
});

describe('PSK service', () => {
  let dir: string;
  let store: Store;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'scs-service-'));
    ({ store } = await openStore({
      db: `sqlite:${path.join(dir, 'scs.db')}`,
      masterKeyFile: path.join(dir, 'master.key'),
    }));
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('generates exactly the count asked for, drawing again for PIDs that already exist', async () => {
    const existing = Array.from({ length: 5 }, () => ({
      pid: generatePid(),
      pps: new Secret(generatePps()),
      batch: 'old',
    }));
    await store.psks.insertMany(existing, { actor: 't', source: 'import' });
    // The first draws collide with the database, then one collides within the run.
    const queue: DrawnPsk[] = existing.map((e) => ({ pid: e.pid, pps: generatePps() }));
    const repeat = { pid: generatePid(), pps: generatePps() };
    queue.push(repeat, repeat);
    const fallback = new PairSource();
    const draw = (): DrawnPsk => queue.shift() ?? fallback.next();
    const progress: number[] = [];
    const r = await generatePsks(store, {
      count: 40,
      batch: 'fresh',
      actor: 'tester',
      chunkSize: 16,
      draw,
      onProgress: (done, total) => {
        assert.equal(total, 40);
        progress.push(done);
      },
    });
    assert.deepEqual(r, { batch: 'fresh', generated: 40, collisions: 6 });
    assert.equal((await store.psks.countByState({ batch: 'fresh' })).available, 40);
    assert.equal((await store.psks.countByState({ batch: 'old' })).available, 5);
    assert.equal(progress.at(-1), 40);
    assert.deepEqual(
      progress,
      [...progress].sort((a, b) => a - b),
    );
    const generated = await store.audit.list({ action: 'psk.generate', order: 'asc' });
    assert.equal(
      generated.reduce((n, e) => n + e.pids.length, 0),
      40,
    );
    assert.ok(generated.every((e) => e.actor === 'tester' && e.detail.batch === 'fresh'));
  });

  it('generates a batch big enough to go through the seal worker and the database in chunks', async () => {
    const r = await generatePsks(store, { count: 12_345, batch: 'bulk', actor: 't', chunkSize: 5000 });
    assert.equal(r.generated, 12_345);
    assert.equal((await store.psks.countByState({ batch: 'bulk' })).available, 12_345);
    const [row] = await store.psks.list({ batch: 'bulk', limit: 1 });
    assert.ok(row);
    assert.equal(parsePps((await store.psks.reveal(row.pid, { actor: 't', purpose: 'check' })).reveal()).length, 32);
  });

  it('stops on a source that only repeats existing PIDs instead of looping forever', async () => {
    const [row] = await store.psks.list({ limit: 1 });
    assert.ok(row);
    await assert.rejects(
      generatePsks(store, { count: 3, batch: 'stuck', actor: 't', draw: () => ({ pid: row.pid, pps: generatePps() }) }),
      (e) => isScsError(e, 'SCS_STORE_FAILED') && /no progress/.test(e.message),
    );
  });

  it('rejects a count out of range and a bad batch name before touching the database', async () => {
    for (const count of [0, -1, 1.5, 10_000_001]) {
      await assert.rejects(generatePsks(store, { count, batch: 'x', actor: 't' }), (e) =>
        isScsError(e, 'SCS_ARGUMENT_INVALID'),
      );
    }
    await assert.rejects(generatePsks(store, { count: 1, batch: '-x', actor: 't' }), (e) =>
      isScsError(e, 'SCS_ARGUMENT_INVALID'),
    );
    await assert.rejects(generatePsks(store, { count: 1, batch: 'a b', actor: 't' }), /batch name "a b" is invalid/);
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      generatePsks(store, { count: 10, batch: 'aborted', actor: 't', signal: controller.signal }),
      (e: Error) => e.name === 'AbortError',
    );
    assert.equal(await store.batches.get('aborted'), undefined);
  });

  it('revokes all of the given PSKs or none of them', async () => {
    await generatePsks(store, { count: 4, batch: 'rev', actor: 't' });
    const rows = await store.psks.list({ batch: 'rev' });
    const [a, b, c, d] = rows.map((r) => r.pid);
    assert.ok(a && b && c && d);
    await store.psks.transition({ pids: [b], from: ['available'], to: 'exported', actor: 't' });
    assert.equal(await revokePsks(store, [a, b, a], { actor: 't', reason: 'stolen laptop' }), 2);
    await store.psks.transition({ pids: [c], from: ['available'], to: 'in_use', actor: 't' });
    await store.psks.transition({ pids: [c], from: ['in_use'], to: 'consumed', actor: 't' });
    await assert.rejects(revokePsks(store, [d, c], { actor: 't' }), (e) => isScsError(e, 'SCS_PSK_STATE_INVALID'));
    assert.equal((await store.psks.get(d))?.state, 'available');
    const [entry] = await store.audit.list({ pid: a, limit: 1 });
    assert.equal(entry?.detail.reason, 'stolen laptop');
  });

  it('lists every matching PSK across pages, up to a limit', async () => {
    let n = 0;
    for await (const r of listPsks(store, { batch: 'bulk' })) {
      assert.equal(r.batch, 'bulk');
      n++;
    }
    assert.equal(n, 12_345);
    let capped = 0;
    for await (const _ of listPsks(store, { batch: 'bulk', limit: 1500 })) capped++;
    assert.equal(capped, 1500);
  });
});
