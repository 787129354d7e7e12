import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { isScsError, type ErrorCode } from '../../errors.ts';
import { generatePid, generatePps } from '../../psk/generate.ts';
import { formatPps } from '../../psk/pps.ts';
import { Secret } from '../../secret.ts';
import { runStoreContract, type StoreHarness } from '../contract.ts';
import { openStore } from '../open.ts';
import { SqlStore } from '../sql/sql-store.ts';
import type { OpenedStore, PskState } from '../store.ts';
import { SQLITE_MIGRATIONS } from './migrations.ts';
import { openSqliteStore } from './open-sqlite.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'scs-store-'));
  dirs.push(d);
  return d;
}

function paths(dir: string): { db: string; key: string } {
  return { db: path.join(dir, 'data', 'scs.db'), key: path.join(dir, 'data', 'master.key') };
}

function open(dir: string): Promise<OpenedStore> {
  const p = paths(dir);
  return openStore({ db: `sqlite:${p.db}`, masterKeyFile: p.key });
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(isScsError(e, code), `expected ${code}, got ${String(e)}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

runStoreContract('sqlite', async (): Promise<StoreHarness> => {
  const dir = tempDir();
  const { store } = await open(dir);
  // A second connection, as another process (or an attacker with file access) would have.
  const side = new Database(paths(dir).db);
  return {
    store,
    exec: (sql) => Promise.resolve().then(() => void side.exec(sql)),
    query: (sql) => Promise.resolve(side.prepare(sql).all() as Record<string, unknown>[]),
    disableAuditGuards: () =>
      Promise.resolve().then(() => {
        side.exec('drop trigger if exists audit_log_no_update; drop trigger if exists audit_log_no_delete');
      }),
    cleanup: async () => {
      side.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SQLite store files', () => {
  it('keeps the CHECK constraints on psks for every other statement after bulk inserts (generate and import insert without them)', async () => {
    const dir = tempDir();
    const { store } = await open(dir);
    try {
      const raw = SqlStore.rawOf(store);
      assert.ok(raw !== undefined && raw.engine.name === 'sqlite');
      const bogus = (): Promise<unknown> =>
        raw.db
          .updateTable('psks')
          .set({ state: 'bogus' as PskState })
          .execute();
      const rows = (n: number) =>
        Array.from({ length: n }, () => ({ pid: generatePid(), pps: new Secret(generatePps()), batch: 'checks' }));
      await store.psks.insertMany(rows(250), { actor: 't', source: 'generate' });
      await assert.rejects(bogus(), /CHECK constraint failed/);
      const staged = rows(3000);
      await store.transaction(async (tx) => {
        const bulk = tx.psks.bulkInsert({ actor: 't', source: 'import' });
        await bulk.add({
          count: staged.length,
          pids: staged.map((r) => r.pid),
          pps: Buffer.from(staged.map((r) => r.pps.reveal()).join(''), 'latin1'),
          batches: staged.map(() => 'checks'),
          states: staged.map(() => 'available'),
          createdAt: staged.map(() => Date.now()),
        });
        return bulk.finish();
      });
      await assert.rejects(bogus(), /CHECK constraint failed/);
      assert.equal((await store.psks.countByState({ batch: 'checks' })).available, 3250);
    } finally {
      await store.close();
    }
  });

  it('keeps no PPS in clear in the database or its WAL, while PIDs are plainly there', async () => {
    const dir = tempDir();
    const { store } = await open(dir);
    const rows = Array.from({ length: 3000 }, () => ({
      pid: generatePid(),
      pps: new Secret(generatePps()),
      batch: 'scan',
    }));
    await store.psks.insertMany(rows, { actor: 't', source: 'generate' });
    await store.psks.reveal(rows[0]?.pid ?? generatePid(), { actor: 't', purpose: 'scan' });
    for await (const _ of store.psks.iterateWithPps({ limit: 50 }, { actor: 't', purpose: 'scan' })) void _;
    const { db } = paths(dir);
    const scan = (): Buffer => Buffer.concat([db, `${db}-wal`].filter(existsSync).map((f) => readFileSync(f)));
    // While open (data in the WAL) and after close (checkpointed into the main file).
    for (const phase of ['open', 'closed']) {
      if (phase === 'closed') await store.close();
      const bytes = scan();
      assert.ok(bytes.includes(rows[1]?.pid ?? '-'), `${phase}: the scan should find a PID`);
      for (const r of rows) {
        const pps = r.pps.reveal();
        for (const form of [pps, formatPps(pps), pps.slice(0, 16), pps.slice(16)]) {
          assert.ok(!bytes.includes(form), `${phase}: a PPS appears in clear`);
        }
      }
    }
  });

  it('creates the master key 0600 in a 0700 directory on the first start, and says so once', async () => {
    const dir = tempDir();
    const first = await open(dir);
    const { key } = paths(dir);
    assert.deepEqual(first.masterKey, { file: key, created: true });
    assert.equal(statSync(key).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(key)).mode & 0o777, 0o700);
    assert.match(readFileSync(key, 'utf8'), /^[0-9a-f]{64}\n$/);
    await first.store.close();
    const second = await open(dir);
    assert.equal(second.masterKey.created, false);
    await second.store.close();
  });

  it('refuses to start with a wrong master key and changes neither the database nor the key file', async () => {
    const dir = tempDir();
    const { db, key } = paths(dir);
    const first = await open(dir);
    await first.store.psks.insertMany([{ pid: generatePid(), pps: new Secret(generatePps()), batch: 'k' }], {
      actor: 't',
      source: 'generate',
    });
    await first.store.close();
    const dbBefore = sha256(db);
    writeFileSync(key, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const keyBefore = sha256(key);
    await rejectsWith(open(dir), 'SCS_MASTER_KEY_MISMATCH', /does not open data key 1/);
    assert.equal(sha256(db), dbBefore);
    assert.equal(sha256(key), keyBefore);
    assert.ok(!existsSync(`${db}-wal`) || statSync(`${db}-wal`).size === 0);
  });

  it('refuses to start when the database exists but the key file is gone, and creates no key', async () => {
    const dir = tempDir();
    const { db, key } = paths(dir);
    await (await open(dir)).store.close();
    rmSync(key);
    const dbBefore = sha256(db);
    await rejectsWith(open(dir), 'SCS_MASTER_KEY_INVALID', /does not exist but the database does/);
    assert.equal(existsSync(key), false);
    assert.equal(sha256(db), dbBefore);
  });

  it('rejects a key file that does not hold 32 bytes, without quoting it', async () => {
    const dir = tempDir();
    const { key } = paths(dir);
    await (await open(dir)).store.close();
    writeFileSync(key, 'c2VjcmV0LWJ1dC10b28tc2hvcnQ=\n');
    await rejectsWith(open(dir), 'SCS_MASTER_KEY_INVALID', /does not hold a 32-byte key/);
    await assert.rejects(open(dir), (e: Error) => !e.message.includes('c2VjcmV0'));
  });

  it('refuses a database written by a newer amt-scs and leaves it untouched', async () => {
    const dir = tempDir();
    const { db, key } = paths(dir);
    const future = [
      ...SQLITE_MIGRATIONS,
      { version: 99, name: 'from the future', statements: ['create table later (x integer)'] },
    ];
    await (await openSqliteStore({ file: db, masterKeyFile: key, migrations: future })).store.close();
    const dbBefore = sha256(db);
    const known = Math.max(...SQLITE_MIGRATIONS.map((m) => m.version));
    await rejectsWith(
      open(dir),
      'SCS_STORE_SCHEMA_NEWER',
      new RegExp(`schema version 99; this amt-scs knows up to ${known}:`),
    );
    assert.equal(sha256(db), dbBefore);
  });

  it('opens in WAL mode with foreign keys on, and rejects an unsupported database URL', async () => {
    const dir = tempDir();
    const { store } = await open(dir);
    await store.close();
    const side = new Database(paths(dir).db, { readonly: true });
    assert.equal(side.pragma('journal_mode', { simple: true }), 'wal');
    side.close();
    await rejectsWith(openStore({ db: 'oracle://db/scs', masterKeyFile: paths(dir).key }), 'SCS_STORE_UNSUPPORTED');
    await rejectsWith(openStore({ db: 'mysql://db/scs', masterKeyFile: paths(dir).key }), 'SCS_STORE_UNSUPPORTED');
  });

  it('keeps one valid audit chain when two processes write at the same time', async () => {
    const dir = tempDir();
    const { db, key } = paths(dir);
    const { store } = await open(dir);
    const openTs = fileURLToPath(new URL('../open.ts', import.meta.url));
    // A second process appending while this one does: BEGIN IMMEDIATE serializes the two writers.
    const child = spawn(
      process.execPath,
      [
        ...process.execArgv.filter((a) => !a.startsWith('--test')),
        '--input-type=module',
        '-e',
        `const { openStore } = await import(${JSON.stringify(openTs)});
         const { store } = await openStore({ db: ${JSON.stringify(`sqlite:${db}`)}, masterKeyFile: ${JSON.stringify(key)} });
         for (let i = 0; i < 60; i++) await store.audit.append({ actor: 'child', action: 'test.concurrent' });
         await store.close();`,
      ],
      { stdio: ['ignore', 'inherit', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    for (let i = 0; i < 60; i++) {
      await store.audit.append({ actor: 'parent', action: 'test.concurrent' });
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(await exited, 0, stderr);
    const v = await store.audit.verify();
    assert.deepEqual(v.ok && v.entries, 120);
    await store.close();
  });
});
