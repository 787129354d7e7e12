import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useTempStore } from '../../../test/helpers/temp-store.ts';

/**
 * Audit batching (sql-store.ts AuditBuffer): entries appended inside one transaction are chained
 * in memory and written just before COMMIT. What must hold is what held with one write per
 * append: one unbroken chain, entries in append order, nothing left behind by a rollback, and
 * reads inside the transaction seeing what it appended.
 */
describe('audit entries appended in one transaction', () => {
  const t = useTempStore('scs-audit-batch-');
  const actor = 'test';

  it('are all stored at commit, in append order, on one chain that verifies', async () => {
    const before = (await t.store.audit.verify()).entries;
    // 69 = 64 + 4 + 1: every insert size of the flush is used.
    const appended = await t.store.transaction(async (tx) => {
      const out: number[] = [];
      for (let i = 0; i < 69; i++)
        out.push((await tx.audit.append({ actor, action: 'test.batch', detail: { i } })).seq);
      return out;
    });
    assert.deepEqual(
      appended,
      Array.from({ length: 69 }, (_, i) => before + 1 + i),
    );
    const stored = await t.store.audit.list({ action: 'test.batch', order: 'asc', limit: 100 });
    assert.deepEqual(
      stored.map((e) => e.detail.i),
      Array.from({ length: 69 }, (_, i) => i),
    );
    const verified = await t.store.audit.verify();
    assert.equal(verified.ok, true, JSON.stringify(verified));
    assert.equal(verified.entries, before + 69);
  });

  it('are visible to audit reads and device history inside the same transaction', async () => {
    const uuid = '12345678-1234-4234-8234-123456789abc';
    await t.store.transaction(async (tx) => {
      await tx.audit.append({ actor, action: 'test.inside', detail: { uuid } });
      assert.equal((await tx.audit.list({ action: 'test.inside' })).length, 1);
      assert.deepEqual(
        (await tx.devices.history(uuid)).map((e) => e.action),
        ['test.inside'],
      );
      // Appends after a read go on the same chain.
      await tx.audit.append({ actor, action: 'test.inside', detail: { uuid } });
      assert.equal((await tx.audit.verify()).ok, true);
    });
    assert.equal((await t.store.audit.list({ action: 'test.inside' })).length, 2);
    assert.equal((await t.store.audit.verify()).ok, true);
  });

  it('leave nothing behind when the transaction rolls back, and the next append chains on the old head', async () => {
    const before = await t.store.audit.verify();
    await assert.rejects(
      t.store.transaction(async (tx) => {
        await tx.audit.append({ actor, action: 'test.rolled_back' });
        await tx.audit.append({ actor, action: 'test.rolled_back' });
        throw new Error('abort the transaction');
      }),
      /abort the transaction/,
    );
    assert.deepEqual(await t.store.audit.list({ action: 'test.rolled_back' }), []);
    const after = await t.store.audit.append({ actor, action: 'test.after' });
    assert.equal(after.seq, before.entries + 1);
    assert.equal((await t.store.audit.verify()).ok, true);
  });
});
