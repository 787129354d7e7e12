import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { useTempStore } from '../../../test/helpers/temp-store.ts';
import { isScsError } from '../../errors.ts';
import type { Pid } from '../../psk/pid.ts';
import { generatePsks } from '../../psk/service.ts';
import { openPostgresStore } from '../postgres/open-postgres.ts';
import { freshSchema, pgTestServer } from '../postgres/test-server.ts';
import type { PskPage, PskState, Store } from '../store.ts';
import { SqlStore } from './sql-store.ts';

const actor = 'pages-test';
const reveal = { actor, purpose: 'pages test' };

interface Row {
  pid: string;
  pps: string;
  batch: string;
  createdAt: number;
  state: PskState;
}

/** Copies a page out (its PPS buffer is zeroed once the iteration moves on). */
function rowsOf(page: PskPage): Row[] {
  const pps = page.pps.reveal();
  return page.pids.map((pid, i) => ({
    pid,
    pps: pps.toString('latin1', i * 32, i * 32 + 32),
    batch: page.batches[i] as string,
    createdAt: page.createdAt[i] as number,
    state: page.state,
  }));
}

async function auditCount(store: Store, action: string): Promise<number> {
  return (await store.audit.list({ action, limit: 10_000 })).length;
}

describe('psks.pages (the export read)', () => {
  const t = useTempStore('scs-pages-');

  it('reads every PSK of one state in id order, PPS byte for byte as iterateWithPps gives it, one psk.reveal entry per page', async () => {
    const { store } = t;
    await generatePsks(store, { count: 1300, batch: 'one', actor });
    await generatePsks(store, { count: 1200, batch: 'two', actor });
    const some = await store.psks.list({ batch: 'two', limit: 200 });
    await store.psks.transition({ pids: some.map((r) => r.pid), from: ['available'], to: 'exported', actor });
    const expected: Row[] = [];
    for await (const r of store.psks.iterateWithPps({ state: 'available' }, reveal)) {
      expected.push({
        pid: r.pid,
        pps: r.pps.reveal(),
        batch: r.batch,
        createdAt: r.createdAt.getTime(),
        state: r.state,
      });
    }
    const revealsBefore = await auditCount(store, 'psk.reveal');
    const got: Row[] = [];
    const sizes: number[] = [];
    for await (const page of store.psks.pages({ state: 'available' }, reveal)) {
      sizes.push(page.count);
      got.push(...rowsOf(page));
    }
    assert.equal(got.length, 2300);
    assert.deepEqual(got, expected);
    assert.deepEqual(sizes, [1000, 1000, 300]);
    assert.equal((await auditCount(store, 'psk.reveal')) - revealsBefore, 3);
    const [last] = await store.audit.list({ action: 'psk.reveal', limit: 1 });
    assert.equal(last?.pids.length, 300);
    assert.equal(last?.detail.purpose, 'pages test');
    assert.ok((await store.audit.verify()).ok);
  });

  it('honours batch, limit and page size', async () => {
    const { store } = t;
    await generatePsks(store, { count: 700, batch: 'a', actor });
    await generatePsks(store, { count: 900, batch: 'b', actor });
    const sizes: number[] = [];
    const batches = new Set<string>();
    for await (const page of store.psks.pages({ state: 'available', batch: 'b', limit: 850, pageSize: 200 }, reveal)) {
      sizes.push(page.count);
      for (const b of page.batches) batches.add(b);
    }
    assert.deepEqual(sizes, [200, 200, 200, 200, 50]);
    assert.deepEqual([...batches], ['b']);
  });

  it('moves each page to the target state with one audited change per page, inside the caller transaction', async () => {
    const { store } = t;
    await generatePsks(store, { count: 1500, batch: 'm', actor });
    await generatePsks(store, { count: 300, batch: 'other', actor });
    const moved: string[] = [];
    await store.transaction(async (tx) => {
      for await (const page of tx.psks.pages(
        { state: 'available', batch: 'm', to: 'transferred', reason: 'test move' },
        reveal,
      )) {
        assert.equal(page.state, 'available');
        moved.push(...page.pids);
      }
    });
    assert.equal(moved.length, 1500);
    const counts = await store.psks.countByState({ batch: 'm' });
    assert.equal(counts.transferred, 1500);
    assert.equal(counts.available, 0);
    assert.equal((await store.psks.countByState({ batch: 'other' })).available, 300);
    const changes = await store.audit.list({ action: 'psk.state', limit: 100, order: 'asc' });
    assert.equal(changes.length, 2);
    assert.deepEqual(
      changes.flatMap((e) => e.pids),
      moved,
    );
    assert.deepEqual(changes[0]?.detail, { reason: 'test move', from: 'available', to: 'transferred' });
    const row = await store.psks.get(moved[0] as Pid);
    assert.equal(row?.state, 'transferred');
    assert.equal(row?.priorState, null);
  });

  it('keeps the CHECK constraints on psks for every other statement after a move (SQLite moves a page without them)', async () => {
    const { store } = t;
    await generatePsks(store, { count: 1200, batch: 'c', actor });
    const raw = SqlStore.rawOf(store);
    assert.ok(raw !== undefined && raw.engine.name === 'sqlite' && raw.engine.movePskPage !== undefined);
    const bogus = (db: NonNullable<typeof raw>['db']) =>
      db
        .updateTable('psks')
        .set({ state: 'bogus' as PskState })
        .where('batch', '=', 'c')
        .execute();
    await store.transaction(async (tx) => {
      for await (const page of tx.psks.pages({ state: 'available', batch: 'c', to: 'exported' }, reveal)) void page;
    });
    assert.equal((await store.psks.countByState({ batch: 'c' })).exported, 1200);
    await assert.rejects(bogus(raw.db), /CHECK constraint failed/);
    // A move outside a transaction (each page its own) too, and one that fails half-way.
    await generatePsks(store, { count: 10, batch: 'd', actor });
    for await (const page of store.psks.pages({ state: 'available', batch: 'd', to: 'transferred' }, reveal)) void page;
    await assert.rejects(bogus(raw.db), /CHECK constraint failed/);
    assert.equal((await store.psks.countByState({ batch: 'd' })).transferred, 10);
  });

  it('changes nothing when the transaction around a move fails after some pages', async () => {
    const { store } = t;
    await generatePsks(store, { count: 2500, batch: 'r', actor });
    const audits = (await store.audit.verify()).ok ? await store.audit.list({ limit: 1 }) : [];
    await assert.rejects(
      store.transaction(async (tx) => {
        let n = 0;
        for await (const page of tx.psks.pages({ state: 'available', to: 'exported' }, reveal)) {
          n += page.count;
          if (n >= 2000) throw new Error('disk full');
        }
      }),
      /disk full/,
    );
    assert.equal((await store.psks.countByState()).available, 2500);
    assert.deepEqual(await store.audit.list({ limit: 1 }), audits);
    // The page read ahead did not outlive the failed transaction: the store works on.
    assert.equal((await store.psks.list({ state: 'exported' })).length, 0);
  });

  it('refuses a change the lifecycle forbids before reading anything', async () => {
    const { store } = t;
    await generatePsks(store, { count: 10, batch: 'x', actor });
    const before = await store.audit.list({ limit: 1 });
    await assert.rejects(
      async () => {
        for await (const page of store.psks.pages({ state: 'available', to: 'consumed' }, reveal)) void page;
      },
      (e: unknown) => isScsError(e) && e.code === 'SCS_PSK_STATE_INVALID',
    );
    await assert.rejects(
      async () => {
        for await (const page of store.psks.pages({ state: 'available', pageSize: 1001 }, reveal)) void page;
      },
      (e: unknown) => isScsError(e) && e.code === 'SCS_ARGUMENT_INVALID',
    );
    assert.deepEqual(await store.audit.list({ limit: 1 }), before);
  });
});

describe('psks.pages on PostgreSQL (string_agg)', async () => {
  const server = await pgTestServer();
  it(
    'reads what iterateWithPps reads and moves every page, the audit chain intact',
    { skip: server.skip, timeout: 120_000 },
    async () => {
      const fresh = await freshSchema(server.url as string);
      const keyDir = mkdtempSync(path.join(tmpdir(), 'scs-pages-pg-'));
      const { store } = await openPostgresStore({ url: fresh.url, masterKeyFile: path.join(keyDir, 'master.key') });
      try {
        await generatePsks(store, { count: 2500, batch: 'pg', actor });
        const expected: Row[] = [];
        for await (const r of store.psks.iterateWithPps({ state: 'available' }, reveal)) {
          expected.push({
            pid: r.pid,
            pps: r.pps.reveal(),
            batch: r.batch,
            createdAt: r.createdAt.getTime(),
            state: r.state,
          });
        }
        const got: Row[] = [];
        for await (const page of store.psks.pages({ state: 'available' }, reveal)) got.push(...rowsOf(page));
        assert.deepEqual(got, expected);
        let moved = 0;
        await store.transaction(async (tx) => {
          for await (const page of tx.psks.pages(
            { state: 'available', to: 'transferred', reason: 'pg move' },
            reveal,
          )) {
            moved += page.count;
          }
        });
        assert.equal(moved, 2500);
        assert.equal((await store.psks.countByState()).transferred, 2500);
        assert.ok((await store.audit.verify()).ok);
      } finally {
        await store.close();
        await fresh.drop();
        rmSync(keyDir, { recursive: true, force: true });
      }
    },
  );
});
