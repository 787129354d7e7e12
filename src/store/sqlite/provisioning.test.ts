import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { StoreHarness } from '../contract.ts';
import { openStore } from '../open.ts';
import { runProvisioningContract } from '../provisioning/contract.ts';
import { SQLITE_MIGRATIONS } from './migrations.ts';
import { PROVISIONING_MIGRATION } from './provisioning-migration.ts';

function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'scs-prov-store-'));
}

runProvisioningContract('sqlite', async (): Promise<StoreHarness> => {
  const dir = tempDir();
  const file = path.join(dir, 'scs.db');
  const { store } = await openStore({ db: `sqlite:${file}`, masterKeyFile: path.join(dir, 'master.key') });
  const side = new Database(file);
  return {
    store,
    exec: (sql) => Promise.resolve().then(() => void side.exec(sql)),
    query: (sql) => Promise.resolve(side.prepare(sql).all() as Record<string, unknown>[]),
    disableAuditGuards: () => Promise.resolve(),
    cleanup: async () => {
      side.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SQLite provisioning schema', () => {
  it('is migration version 2, applied with the others on first start', async () => {
    assert.ok(SQLITE_MIGRATIONS.includes(PROVISIONING_MIGRATION));
    const dir = tempDir();
    try {
      const file = path.join(dir, 'scs.db');
      const { store } = await openStore({ db: `sqlite:${file}`, masterKeyFile: path.join(dir, 'master.key') });
      await store.close();
      const db = new Database(file, { readonly: true });
      const versions = db.prepare('select version from schema_migrations order by version').pluck().all();
      const tables = db.prepare(`select name from sqlite_master where type = 'table'`).pluck().all();
      db.close();
      assert.ok(versions.includes(2));
      for (const t of ['profiles', 'devices', 'jobs', 'escrow', 'ca']) assert.ok(tables.includes(t), t);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
