import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isScsError, type ErrorCode } from '../errors.ts';
import { generatePid, generatePps } from '../psk/generate.ts';
import type { Pid } from '../psk/pid.ts';
import { Secret } from '../secret.ts';
import { chainHash } from './audit-chain.ts';
import { canTransition, PSK_STATES, type PskState } from './lifecycle.ts';
import type { NewPsk, PskColumns, Store } from './store.ts';

/** What an adapter's test hands the contract: a fresh, empty store and a side door to its SQL. */
export interface StoreHarness {
  readonly store: Store;
  /** Runs SQL on the same database outside the Store API (tamper tests); rejects on SQL errors. */
  exec(sql: string): Promise<void>;
  /** Drops the adapter's guards against UPDATE/DELETE of audit_log (what an attacker would do first). */
  disableAuditGuards(): Promise<void>;
  /** Runs a query outside the Store API and returns its rows. */
  query(sql: string): Promise<Record<string, unknown>[]>;
  /** Closes the store (if still open) and removes everything the harness created. */
  cleanup(): Promise<void>;
}

const actor = 'contract-test';

function newPsks(n: number, batch = 'b1', state?: PskState): NewPsk[] {
  return Array.from({ length: n }, () => ({
    pid: generatePid(),
    pps: new Secret(generatePps()),
    batch,
    ...(state === undefined ? {} : { state }),
  }));
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(isScsError(e, code), `expected ${code}, got ${String(e)}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

/**
 * The behaviour every Store adapter must have (docs/psk-database.md). Run by
 * src/store/sqlite/sqlite.test.ts now and by the PostgreSQL adapter's test later.
 */
export function runStoreContract(name: string, makeStore: () => Promise<StoreHarness>): void {
  describe(`Store contract: ${name}`, () => {
    let h: StoreHarness;
    let store: Store;
    beforeEach(async () => {
      h = await makeStore();
      store = h.store;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    describe('inserting', () => {
      it('stores PSKs as available, reads them back without the PPS and reveals the PPS through an audited call', async () => {
        const rows = newPsks(3);
        const r = await store.psks.insertMany(rows, { actor, source: 'generate' });
        assert.deepEqual(r, { inserted: 3, duplicates: [], conflicts: [] });
        const first = rows[0] as NewPsk;
        const got = await store.psks.get(first.pid);
        assert.ok(got);
        assert.equal(got.state, 'available');
        assert.equal(got.batch, 'b1');
        assert.equal(got.priorState, null);
        assert.equal(got.deviceUuid, null);
        assert.ok(got.createdAt instanceof Date && !Number.isNaN(got.createdAt.getTime()));
        assert.ok(!('pps' in got));
        const pps = await store.psks.reveal(first.pid, { actor: 'alice', purpose: 'test' });
        assert.equal(pps.reveal(), first.pps.reveal());
        const [last] = await store.audit.list({ limit: 1 });
        assert.equal(last?.action, 'psk.reveal');
        assert.equal(last.actor, 'alice');
        assert.deepEqual(last.pids, [first.pid]);
        assert.equal(last.detail.purpose, 'test');
        assert.equal(await store.psks.get('AAAAAAAA' as Pid), undefined);
        await rejectsWith(
          store.psks.reveal('AAAAAAAA' as Pid, { actor, purpose: 't' }),
          'SCS_PSK_NOT_FOUND',
          /AAAA-AAAA/,
        );
      });

      it('skips PIDs already present and reports them as duplicates, and a different PPS as a conflict', async () => {
        const rows = newPsks(3);
        await store.psks.insertMany(rows, { actor, source: 'import' });
        const [a, b] = rows as [NewPsk, NewPsk];
        const fresh = newPsks(1)[0] as NewPsk;
        const again: NewPsk[] = [
          a, // same PID and PPS: duplicate only
          { pid: b.pid, pps: new Secret(generatePps()), batch: 'b1' }, // same PID, other PPS: conflict
          fresh,
          { pid: fresh.pid, pps: new Secret(generatePps()), batch: 'b1' }, // repeated in the same call
        ];
        const r = await store.psks.insertMany(again, { actor, source: 'import' });
        assert.equal(r.inserted, 1);
        assert.deepEqual([...r.duplicates].sort(), [a.pid, b.pid, fresh.pid].sort());
        assert.deepEqual([...r.conflicts].sort(), [b.pid, fresh.pid].sort());
        // The stored PPS is still the first one.
        assert.equal((await store.psks.reveal(b.pid, { actor, purpose: 't' })).reveal(), b.pps.reveal());
      });

      it('bulkInsert: inserts columns in one transaction with their batch, state and creation time, skips what exists, names other PPS as conflicts, audits each inserted PID once', async () => {
        const first = newPsks(3);
        await store.psks.insertMany(first, { actor, source: 'generate' });
        const [a, b] = first as [NewPsk, NewPsk];
        const fresh = newPsks(5);
        const repeated = fresh[4] as NewPsk;
        const other = new Secret(generatePps());
        // a: same PPS (duplicate); b: another PPS (conflict); repeated twice, the second with another PPS.
        const rows = [a, { ...b, pps: other }, ...fresh, { ...repeated, pps: new Secret(generatePps()) }];
        const columns = (part: readonly NewPsk[], created: number): PskColumns => ({
          count: part.length,
          pids: part.map((r) => r.pid),
          pps: Buffer.from(part.map((r) => r.pps.reveal()).join(''), 'latin1'),
          batches: part.map((_, i) => (i % 2 === 0 ? 'bulk-a' : 'bulk-b')),
          states: part.map((_, i) => (i === 1 ? 'exported' : 'available')),
          createdAt: part.map(() => created),
        });
        const created = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
        const auditBefore = (await store.audit.verify()).entries;
        const r = await store.transaction(async (tx) => {
          const bulk = tx.psks.bulkInsert({ actor, source: 'import', detail: { file: 'f' } });
          const handed = columns(rows.slice(0, 4), created);
          await bulk.add(handed);
          await bulk.add(columns(rows.slice(4), created));
          const result = await bulk.finish();
          assert.ok(
            handed.pps.every((x) => x === 0),
            'the plaintext handed over is zeroed',
          );
          return result;
        });
        assert.equal(r.inserted, 5);
        assert.deepEqual([...r.duplicates].sort(), [a.pid, b.pid, repeated.pid].sort());
        assert.deepEqual([...r.conflicts].sort(), [b.pid, repeated.pid].sort());
        assert.equal((await store.psks.reveal(b.pid, { actor, purpose: 't' })).reveal(), b.pps.reveal());
        assert.equal((await store.psks.reveal(repeated.pid, { actor, purpose: 't' })).reveal(), repeated.pps.reveal());
        const got = await store.psks.get((fresh[0] as NewPsk).pid);
        assert.equal(got?.createdAt.getTime(), created);
        assert.equal(got?.batch, 'bulk-a');
        assert.equal((await store.psks.get((fresh[1] as NewPsk).pid))?.state, 'available');
        const audited = (await store.audit.list({ action: 'psk.import' })).flatMap((e) => e.pids);
        assert.deepEqual([...audited].sort(), fresh.map((f) => f.pid).sort());
        const verified = await store.audit.verify();
        assert.equal(verified.ok, true);
        assert.ok(verified.entries > auditBefore);
      });

      it('bulkInsert: an initial state it may not enter in or a bad batch name fails the add', async () => {
        await rejectsWith(
          store.transaction(async (tx) => {
            const one = newPsks(1)[0] as NewPsk;
            await tx.psks.bulkInsert({ actor, source: 'import' }).add({
              count: 1,
              pids: [one.pid],
              pps: Buffer.from(one.pps.reveal(), 'latin1'),
              batches: ['b1'],
              states: ['in_use'],
              createdAt: [Date.now()],
            });
          }),
          'SCS_PSK_STATE_INVALID',
        );
        assert.equal((await store.psks.countByState()).available, 0);
      });

      it('creates batches implicitly and counts PSKs by state, per batch and overall', async () => {
        await store.psks.insertMany([...newPsks(4, 'lab-1'), ...newPsks(2, 'lab-2', 'exported')], {
          actor,
          source: 'generate',
        });
        const batches = await store.batches.list();
        assert.deepEqual(
          batches.map((b) => [b.name, b.total, b.counts.available, b.counts.exported, b.profile]),
          [
            ['lab-1', 4, 4, 0, null],
            ['lab-2', 2, 0, 2, null],
          ],
        );
        assert.equal((await store.batches.get('lab-1'))?.name, 'lab-1');
        assert.equal(await store.batches.get('nope'), undefined);
        const all = await store.psks.countByState();
        assert.equal(all.available, 4);
        assert.equal(all.exported, 2);
        assert.equal((await store.psks.countByState({ batch: 'lab-2' })).available, 0);
        await rejectsWith(store.psks.countByState({ batch: 'nope' }), 'SCS_BATCH_NOT_FOUND');
      });

      it('rejects a bad batch name and a PSK entering as in_use, inserting nothing', async () => {
        await rejectsWith(
          store.psks.insertMany(newPsks(1, 'bad name'), { actor, source: 'import' }),
          'SCS_ARGUMENT_INVALID',
        );
        await rejectsWith(
          store.psks.insertMany(newPsks(1, 'b1', 'in_use'), { actor, source: 'import' }),
          'SCS_PSK_STATE_INVALID',
        );
        assert.deepEqual(await store.psks.list(), []);
        assert.equal((await store.audit.verify()).ok, true);
      });

      it('writes one audit entry per 1000 PIDs of a bulk insert, and every PID appears once', async () => {
        const rows = newPsks(2500);
        await store.psks.insertMany(rows, { actor, source: 'generate', detail: { file: 'x.csv' } });
        const entries = await store.audit.list({ action: 'psk.generate', order: 'asc' });
        assert.deepEqual(
          entries.map((e) => e.pids.length),
          [1000, 1000, 500],
        );
        assert.deepEqual(entries.flatMap((e) => e.pids).sort(), rows.map((r) => r.pid).sort());
        assert.equal(entries[0]?.detail.batch, 'b1');
        assert.equal(entries[0]?.detail.file, 'x.csv');
      });
    });

    describe('states', () => {
      it('allows exactly the documented transitions', async () => {
        // One PSK per (from, to) pair, brought into `from` through the store itself.
        const pairs = PSK_STATES.flatMap((from) => PSK_STATES.map((to) => ({ from, to })));
        const rows = newPsks(pairs.length);
        await store.psks.insertMany(rows, { actor, source: 'generate' });
        const pidOf = (i: number): Pid => (rows[i] as NewPsk).pid;
        const reach: Record<PskState, PskState[]> = {
          available: [],
          exported: ['exported'],
          in_use: ['in_use'],
          consumed: ['in_use', 'consumed'],
          revoked: ['revoked'],
          transferred: ['transferred'],
        };
        for (const [i, { from }] of pairs.entries()) {
          let state: PskState = 'available';
          for (const step of reach[from]) {
            await store.psks.transition({ pids: [pidOf(i)], from: [state], to: step, actor });
            state = step;
          }
        }
        const outcomes: string[] = [];
        for (const [i, { from, to }] of pairs.entries()) {
          try {
            await store.psks.transition({ pids: [pidOf(i)], from: [from], to, actor });
            outcomes.push(`${from}->${to}`);
            assert.equal((await store.psks.get(pidOf(i)))?.state, to);
          } catch (e) {
            assert.ok(isScsError(e, 'SCS_PSK_STATE_INVALID'), String(e));
            assert.match(e.message, new RegExp(`is ${from}; cannot change it to ${to}`));
            assert.equal(e.details.pid, pidOf(i));
            assert.equal((await store.psks.get(pidOf(i)))?.state, from);
          }
        }
        assert.deepEqual(
          outcomes.sort(),
          pairs
            .filter((p) => canTransition(p.from, p.to))
            .map((p) => `${p.from}->${p.to}`)
            .sort(),
        );
        assert.deepEqual(outcomes.sort(), [
          'available->exported',
          'available->in_use',
          'available->revoked',
          'available->transferred',
          'exported->in_use',
          'exported->revoked',
          'exported->transferred',
          'in_use->available',
          'in_use->consumed',
          'in_use->exported',
          'in_use->revoked',
        ]);
        assert.equal((await store.audit.verify()).ok, true);
      });

      it('changes none of the PSKs when one of them is in a state the call does not expect', async () => {
        const rows = newPsks(5);
        await store.psks.insertMany(rows, { actor, source: 'generate' });
        const pids = rows.map((r) => r.pid);
        const odd = pids[3] as Pid;
        await store.psks.transition({ pids: [odd], from: ['available'], to: 'exported', actor });
        const before = await store.audit.list({ limit: 1 });
        await rejectsWith(
          store.psks.transition({ pids, from: ['available'], to: 'revoked', actor }),
          'SCS_PSK_STATE_INVALID',
          new RegExp(
            `${odd.slice(0, 4)}-${odd.slice(4)} is exported; cannot change it to revoked \\(this operation expects available\\)`,
          ),
        );
        const counts = await store.psks.countByState();
        assert.equal(counts.available, 4);
        assert.equal(counts.exported, 1);
        assert.equal(counts.revoked, 0);
        assert.deepEqual(await store.audit.list({ limit: 1 }), before);
      });

      it('fails with SCS_PSK_NOT_FOUND naming the missing PID and changes nothing', async () => {
        const rows = newPsks(2);
        await store.psks.insertMany(rows, { actor, source: 'generate' });
        const missing = generatePid();
        await rejectsWith(
          store.psks.transition({
            pids: [...rows.map((r) => r.pid), missing],
            from: ['available'],
            to: 'exported',
            actor,
          }),
          'SCS_PSK_NOT_FOUND',
          new RegExp(`${missing.slice(0, 4)}-${missing.slice(4)}`),
        );
        assert.equal((await store.psks.countByState()).available, 2);
      });

      it('moves thousands of PSKs in one call, auditing each group of 1000 with its from and to', async () => {
        const rows = newPsks(2200);
        await store.psks.insertMany(rows, { actor, source: 'generate' });
        await store.psks.transition({
          pids: rows.map((r) => r.pid),
          from: ['available'],
          to: 'exported',
          actor,
          reason: 'usb',
        });
        assert.equal((await store.psks.countByState()).exported, 2200);
        const entries = await store.audit.list({ action: 'psk.state', order: 'asc' });
        assert.deepEqual(
          entries.map((e) => [e.pids.length, e.detail.from, e.detail.to, e.detail.reason]),
          [
            [1000, 'available', 'exported', 'usb'],
            [1000, 'available', 'exported', 'usb'],
            [200, 'available', 'exported', 'usb'],
          ],
        );
      });

      it('puts an in_use PSK back into the state it came from on release', async () => {
        const [a, b] = newPsks(2) as [NewPsk, NewPsk];
        await store.psks.insertMany([a, b], { actor, source: 'generate' });
        await store.psks.transition({ pids: [b.pid], from: ['available'], to: 'exported', actor });
        await store.psks.transition({ pids: [a.pid, b.pid], from: ['available', 'exported'], to: 'in_use', actor });
        assert.equal((await store.psks.get(a.pid))?.priorState, 'available');
        assert.equal((await store.psks.get(b.pid))?.priorState, 'exported');
        await store.psks.release([a.pid, b.pid], { actor, reason: 'TLS timeout' });
        assert.equal((await store.psks.get(a.pid))?.state, 'available');
        assert.equal((await store.psks.get(b.pid))?.state, 'exported');
        assert.equal((await store.psks.get(b.pid))?.priorState, null);
        await rejectsWith(store.psks.release([a.pid], { actor }), 'SCS_PSK_STATE_INVALID');
      });

      it('records the device UUID when a PSK is consumed', async () => {
        const [a] = newPsks(1) as [NewPsk];
        await store.psks.insertMany([a], { actor, source: 'generate' });
        await store.psks.transition({ pids: [a.pid], from: ['available'], to: 'in_use', actor: 'runner' });
        const uuid = '8c4f2d1e-0b6a-4e2f-9a51-3c7d2e1f0a9b';
        await store.psks.transition({
          pids: [a.pid],
          from: ['in_use'],
          to: 'consumed',
          actor: 'runner',
          deviceUuid: uuid,
        });
        const got = await store.psks.get(a.pid);
        assert.equal(got?.state, 'consumed');
        assert.equal(got.deviceUuid, uuid);
        const [e] = await store.audit.list({ pid: a.pid, limit: 1 });
        assert.equal(e?.detail.deviceUuid, uuid);
      });

      it('lets exactly one of several concurrent claims of the same PSK win', async () => {
        const [a] = newPsks(1) as [NewPsk];
        await store.psks.insertMany([a], { actor, source: 'generate' });
        const results = await Promise.allSettled(
          Array.from({ length: 6 }, () =>
            store.psks.transition({ pids: [a.pid], from: ['available'], to: 'in_use', actor }),
          ),
        );
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        for (const r of results) if (r.status === 'rejected') assert.ok(isScsError(r.reason, 'SCS_PSK_STATE_INVALID'));
      });
    });

    describe('reading', () => {
      it('pages through PSKs in id order with state and batch filters', async () => {
        await store.psks.insertMany(newPsks(130, 'x'), { actor, source: 'generate' });
        await store.psks.insertMany(newPsks(70, 'y'), { actor, source: 'generate' });
        const seen: number[] = [];
        let afterId: number | undefined;
        for (;;) {
          const page = await store.psks.list({ limit: 45, ...(afterId === undefined ? {} : { afterId }) });
          seen.push(...page.map((r) => r.id));
          if (page.length < 45) break;
          afterId = page.at(-1)?.id;
        }
        assert.equal(seen.length, 200);
        assert.deepEqual(
          seen,
          [...seen].sort((a, b) => a - b),
        );
        assert.equal(new Set(seen).size, 200);
        const ys = await store.psks.list({ batch: 'y', limit: 1000 });
        assert.equal(ys.length, 70);
        assert.ok(ys.every((r) => r.batch === 'y'));
        const some = ys.slice(0, 10).map((r) => r.pid);
        await store.psks.transition({ pids: some, from: ['available'], to: 'exported', actor });
        assert.deepEqual(
          (await store.psks.list({ state: 'exported', batch: 'y' })).map((r) => r.pid).sort(),
          [...some].sort(),
        );
        assert.equal((await store.psks.list({ state: ['exported', 'revoked'] })).length, 10);
        assert.equal((await store.psks.list({ state: 'exported', batch: 'x' })).length, 0);
        await rejectsWith(store.psks.list({ limit: 0 }), 'SCS_ARGUMENT_INVALID');
        await rejectsWith(store.psks.list({ state: 'lost' as PskState }), 'SCS_ARGUMENT_INVALID');
      });

      it('iterates every matching PSK with its PPS, one audited chunk at a time', async () => {
        const rows = newPsks(2300, 'big');
        await store.psks.insertMany(rows, { actor, source: 'generate' });
        await store.psks.insertMany(newPsks(5, 'other'), { actor, source: 'generate' });
        const want = new Map(rows.map((r) => [r.pid as string, r.pps.reveal()]));
        let n = 0;
        let lastId = 0;
        for await (const r of store.psks.iterateWithPps(
          { batch: 'big', chunkSize: 1000 },
          { actor: 'exporter', purpose: 'export' },
        )) {
          assert.equal(r.pps.reveal(), want.get(r.pid));
          assert.ok(r.id > lastId);
          lastId = r.id;
          n++;
        }
        assert.equal(n, 2300);
        const reveals = await store.audit.list({ action: 'psk.reveal', order: 'asc' });
        assert.deepEqual(
          reveals.map((e) => [e.actor, e.pids.length, e.detail.purpose]),
          [
            ['exporter', 1000, 'export'],
            ['exporter', 1000, 'export'],
            ['exporter', 300, 'export'],
          ],
        );
        let capped = 0;
        for await (const _ of store.psks.iterateWithPps({ limit: 7 }, { actor, purpose: 't' })) capped++;
        assert.equal(capped, 7);
      });
    });

    describe('audit log', () => {
      it('verifies an untouched chain and lists entries by PID, newest first', async () => {
        const rows = newPsks(3);
        await store.psks.insertMany(rows, { actor, source: 'generate' });
        const pid = (rows[1] as NewPsk).pid;
        await store.psks.transition({ pids: [pid], from: ['available'], to: 'revoked', actor, reason: 'lost' });
        const appended = await store.audit.append({
          actor: 'hello',
          action: 'hello.unknown_pid',
          detail: { ip: '10.0.0.9' },
        });
        assert.equal(appended.seq, 3);
        // What append returns is the entry as stored (its time to the millisecond included).
        assert.deepEqual(appended, (await store.audit.list({ limit: 1 }))[0]);
        const v = await store.audit.verify();
        assert.deepEqual(v, { ok: true, entries: 3, headSeq: 3, headHash: appended.hash });
        const byPid = await store.audit.list({ pid });
        assert.deepEqual(
          byPid.map((e) => e.action),
          ['psk.state', 'psk.generate'],
        );
        assert.deepEqual(
          (await store.audit.list({ order: 'asc', afterSeq: 1, limit: 1 })).map((e) => e.seq),
          [2],
        );
        assert.deepEqual(
          (await store.audit.list({ beforeSeq: 3, limit: 5 })).map((e) => e.seq),
          [2, 1],
        );
      });

      it('chains every entry onto the previous hash as documented', async () => {
        await store.psks.insertMany(newPsks(2), { actor, source: 'generate' });
        await store.audit.append({ actor: 'x', action: 'test.one', detail: { b: 2, a: 'z', c: null, d: true } });
        const [e1, e2] = await store.audit.list({ order: 'asc' });
        assert.ok(e1 && e2);
        const recompute = (prev: string, e: typeof e1): string =>
          chainHash(prev, {
            seq: e.seq,
            at: e.at.toISOString(),
            actor: e.actor,
            action: e.action,
            pids: e.pids,
            detail: e.detail,
          });
        assert.equal(recompute('0'.repeat(64), e1), e1.hash);
        assert.equal(recompute(e1.hash, e2), e2.hash);
      });

      it('appends entries from concurrent writers into one valid chain', async () => {
        await Promise.all(
          Array.from({ length: 25 }, (_, i) => store.audit.append({ actor: `w${i % 5}`, action: 'test.concurrent' })),
        );
        const v = await store.audit.verify();
        assert.ok(v.ok);
        assert.equal(v.entries, 25);
      });

      it('refuses UPDATE and DELETE of audit entries through plain SQL', async () => {
        await store.audit.append({ actor, action: 'test.a' });
        await assert.rejects(h.exec(`update audit_log set actor = 'mallory' where seq = 1`));
        await assert.rejects(h.exec(`delete from audit_log where seq = 1`));
        assert.equal((await store.audit.verify()).ok, true);
      });

      it('names the seq of an entry edited behind its back', async () => {
        for (let i = 0; i < 5; i++) await store.audit.append({ actor, action: 'test.step', detail: { i } });
        await h.disableAuditGuards();
        await h.exec(`update audit_log set actor = 'mallory' where seq = 3`);
        const v = await store.audit.verify();
        assert.equal(v.ok, false);
        assert.ok(!v.ok && v.brokenSeq === 3 && v.entries === 2, JSON.stringify(v));
      });

      it('names the next seq when an edited entry also gets a recomputed hash', async () => {
        for (let i = 0; i < 4; i++) await store.audit.append({ actor, action: 'test.step', detail: { i } });
        const [e1, e2] = await store.audit.list({ order: 'asc', limit: 2 });
        assert.ok(e1 && e2);
        const forged = chainHash(e1.hash, {
          seq: 2,
          at: e2.at.toISOString(),
          actor: 'mallory',
          action: e2.action,
          pids: [],
          detail: e2.detail,
        });
        await h.disableAuditGuards();
        await h.exec(`update audit_log set actor = 'mallory', hash = '${forged}' where seq = 2`);
        const v = await store.audit.verify();
        assert.ok(!v.ok && v.brokenSeq === 3, JSON.stringify(v));
      });

      it('detects an entry deleted from the middle and entries removed from the end', async () => {
        for (let i = 0; i < 5; i++) await store.audit.append({ actor, action: 'test.step', detail: { i } });
        await h.disableAuditGuards();
        await h.exec(`delete from audit_log where seq = 5`);
        let v = await store.audit.verify();
        assert.ok(!v.ok && v.brokenSeq === 5 && /removed from the end/.test(v.reason), JSON.stringify(v));
        await h.exec(`delete from audit_log where seq = 2`);
        v = await store.audit.verify();
        assert.ok(!v.ok && v.brokenSeq === 2 && /missing/.test(v.reason), JSON.stringify(v));
      });

      it('detects an entry added after the head outside the audit log', async () => {
        await store.audit.append({ actor, action: 'test.a' });
        const [e] = await store.audit.list();
        assert.ok(e);
        await h.exec(
          `insert into audit_log (seq, at, actor, action, pids, detail, hash) values (2, '${e.at.toISOString()}', 'mallory', 'x', '', '{}', '${e.hash}')`,
        );
        const v = await store.audit.verify();
        assert.ok(!v.ok && v.brokenSeq === 2, JSON.stringify(v));
      });
    });

    describe('transactions', () => {
      it('rolls back every change and audit entry of a transaction whose callback throws', async () => {
        const rows = newPsks(2);
        await store.psks.insertMany(rows, { actor, source: 'generate' });
        const head = await store.audit.verify();
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.psks.transition({ pids: rows.map((r) => r.pid), from: ['available'], to: 'revoked', actor });
            await tx.psks.insertMany(newPsks(3, 'tx'), { actor, source: 'import' });
            await tx.audit.append({ actor, action: 'test.in_tx' });
            throw new Error('boom');
          }),
          /boom/,
        );
        assert.equal((await store.psks.countByState()).available, 2);
        assert.equal(await store.batches.get('tx'), undefined);
        assert.deepEqual(await store.audit.verify(), head);
      });

      it('commits everything a transaction did together, nested calls included', async () => {
        const rows = newPsks(2);
        const out = await store.transaction(async (tx) => {
          await tx.psks.insertMany(rows, { actor, source: 'import' });
          return tx.transaction(async (inner) => {
            await inner.psks.transition({
              pids: [(rows[0] as NewPsk).pid],
              from: ['available'],
              to: 'exported',
              actor,
            });
            return 'done';
          });
        });
        assert.equal(out, 'done');
        assert.equal((await store.psks.countByState()).exported, 1);
        assert.equal((await store.audit.verify()).ok, true);
      });

      it('offers inside a transaction every repository the store offers, each rolled back with it', async () => {
        const repos = (s: Store): string[] =>
          Object.entries(s)
            .filter(([, v]) => typeof v === 'object' && v !== null)
            .map(([k]) => k)
            .sort();
        const outer = repos(store);
        assert.ok(outer.includes('tokens') && outer.includes('jobs'), outer.join(','));
        await assert.rejects(
          store.transaction(async (tx) => {
            assert.deepEqual(repos(tx), outer);
            // The repository least used in transactions: it once went missing from them.
            await tx.tokens.create({ name: 'in-tx', role: 'operator', grants: [], hash: 'a'.repeat(64) }, { actor });
            throw new Error('boom');
          }),
          /boom/,
        );
        assert.equal(await store.tokens.countActive(), 0);
      });
    });

    it('never lets a PPS into an audit entry', async () => {
      const rows = newPsks(20);
      await store.psks.insertMany(rows, { actor, source: 'generate' });
      for await (const _ of store.psks.iterateWithPps({}, { actor, purpose: 'export' })) void _;
      await store.psks.reveal((rows[0] as NewPsk).pid, { actor, purpose: 't' });
      const dump = JSON.stringify(await h.query('select * from audit_log'));
      for (const r of rows) assert.ok(!dump.includes(r.pps.reveal()), 'a PPS appears in the audit log');
    });
  });
}
