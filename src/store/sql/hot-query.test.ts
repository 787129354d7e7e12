import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isScsError } from '../../errors.ts';
import { generatePid, generatePps } from '../../psk/generate.ts';
import { Secret } from '../../secret.ts';
import { openStore } from '../open.ts';
import type { EscrowPurpose } from '../provisioning/types.ts';

/**
 * Hot statements inside a SQLite write transaction run as statements prepared on the store's
 * own connection (hot-query.ts, SqlEngine.prepareHot). What must hold: each open store runs
 * them on its own database, never on the one that prepared them first, and a failing
 * statement fails its store call as any other statement does.
 */
describe('hot statements in SQLite write transactions', () => {
  it('run on the database of the store they are called on, with two stores open at once', async () => {
    const dirs = [mkdtempSync(path.join(tmpdir(), 'scs-hot-a-')), mkdtempSync(path.join(tmpdir(), 'scs-hot-b-'))];
    const stores = await Promise.all(
      dirs.map(async (dir) => {
        const { store } = await openStore({
          db: `sqlite:${path.join(dir, 'scs.db')}`,
          masterKeyFile: path.join(dir, 'master.key'),
        });
        return store;
      }),
    );
    try {
      const pids = stores.map(() => generatePid());
      for (const [i, store] of stores.entries()) {
        const pid = pids[i];
        assert.ok(pid);
        await store.psks.insertMany([{ pid, pps: new Secret(generatePps()), batch: 'b' }], {
          actor: 't',
          source: 'generate',
        });
        // psks.get and the PSK move are hot statements; in a transaction they take the direct path.
        await store.transaction(async (tx) => {
          assert.equal((await tx.psks.get(pid))?.state, 'available');
          await tx.psks.transition({ pids: [pid], from: ['available'], to: 'revoked', actor: 't' });
        });
      }
      for (const [i, store] of stores.entries()) {
        const own = pids[i];
        const other = pids[1 - i];
        assert.ok(own && other);
        assert.equal((await store.psks.get(own))?.state, 'revoked');
        assert.equal(await store.psks.get(other), undefined);
        assert.equal((await store.audit.verify()).ok, true);
      }
    } finally {
      for (const store of stores) await store.close();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fail the store call with SCS_STORE_FAILED when the database refuses the statement', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'scs-hot-err-'));
    const { store } = await openStore({
      db: `sqlite:${path.join(dir, 'scs.db')}`,
      masterKeyFile: path.join(dir, 'master.key'),
    });
    try {
      // escrow.put is a hot INSERT; the table's CHECK refuses a purpose the type would not allow.
      await assert.rejects(
        store.transaction((tx) =>
          tx.escrow.put(
            {
              deviceUuid: '12345678-1234-4234-8234-123456789abc',
              purpose: 'bogus' as EscrowPurpose,
              secret: new Secret('x'),
              username: 'admin',
            },
            { actor: 't' },
          ),
        ),
        (e) => isScsError(e, 'SCS_STORE_FAILED') && /CHECK constraint/i.test(e.message),
      );
      assert.equal((await store.audit.verify()).ok, true);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
