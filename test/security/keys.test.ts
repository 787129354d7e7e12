import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.ts';
import { pendingKeyFile, retiredKeyFile } from '../../src/crypto/key-rotation.ts';
import { isScsError } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import { startServer } from '../../src/main.ts';
import type { PskPair } from '../../src/psk/formats/pair.ts';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import { Secret } from '../../src/secret.ts';
import { openStore } from '../../src/store/open.ts';
import { backupSqlite } from '../../src/store/sqlite/backup.ts';
import { rotateSqliteMasterKey, type RotationStep } from '../../src/store/sqlite/rotate-master-key.ts';
import type { Store } from '../../src/store/store.ts';
import { freshSchema, pgTestServer } from '../../src/store/postgres/test-server.ts';
import { rotateMasterKey } from '../../src/store/sql/rewrap-data-keys.ts';
import {
  rotateDataKey,
  SEALED_COLUMNS,
  type DataKeyProgress,
  type RotateDataKeyResult,
} from '../../src/store/sql/rotate-data-key.ts';
import { SqlStore } from '../../src/store/sql/sql-store.ts';
import { createCaMaterial } from '../../src/crypto/ca.ts';
import { readKeyId } from '../../src/crypto/envelope.ts';
import Database from 'better-sqlite3';

/**
 * Master key rotation (crash-safe at every step), start-up with a wrong or missing key (fails,
 * names the problem, changes no byte), and online backups (docs/security.md, "Keys and backups").
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Dir {
  readonly dir: string;
  readonly db: string;
  readonly key: string;
}

function tempDir(): Dir {
  const dir = mkdtempSync(path.join(tmpdir(), 'scs-keys-'));
  return { dir, db: path.join(dir, 'scs.db'), key: path.join(dir, 'master.key') };
}

async function open(d: Dir, key = d.key): Promise<Store> {
  return (await openStore({ db: `sqlite:${d.db}`, masterKeyFile: key })).store;
}

async function seed(d: Dir, n: number): Promise<PskPair[]> {
  const store = await open(d);
  try {
    const pairs = Array.from({ length: n }, () => ({ pid: generatePid(), pps: new Secret(generatePps()) }));
    await store.psks.insertMany(
      pairs.map((p) => ({ ...p, batch: 'lab' })),
      { actor: 'test', source: 'generate' },
    );
    return pairs;
  } finally {
    await store.close();
  }
}

async function assertReadable(store: Store, pairs: readonly PskPair[]): Promise<void> {
  for (const p of pairs) {
    const pps = await store.psks.reveal(p.pid, { actor: 'test', purpose: 'check' });
    assert.equal(pps.reveal(), p.pps.reveal());
  }
}

async function rejectsCode(p: Promise<unknown>, code: string): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(isScsError(e), `expected an ScsError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

/** Name -> SHA-256 of every file in the directory. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    out[name] = createHash('sha256')
      .update(readFileSync(path.join(dir, name)))
      .digest('hex');
  }
  return out;
}

describe('master key rotation', () => {
  it('re-wraps the data keys under a new key file: the old key no longer opens the database, every PPS reads the same', async () => {
    const d = tempDir();
    try {
      const pairs = await seed(d, 20);
      const before = readFileSync(d.key, 'utf8');
      const r = await rotateSqliteMasterKey({ file: d.db, masterKeyFile: d.key, actor: 'test' });
      assert.equal(r.dataKeys, 1);
      const after = readFileSync(d.key, 'utf8');
      assert.notEqual(after, before);
      assert.equal(statSync(d.key).mode & 0o777, 0o600);
      assert.equal(existsSync(pendingKeyFile(d.key)), false);
      assert.equal(existsSync(retiredKeyFile(d.key)), false);

      const oldKey = path.join(d.dir, 'old.key');
      writeFileSync(oldKey, before, { mode: 0o600 });
      // The replaced key is recognised (its fingerprint is in the key.rotate entry) and named as such.
      const replaced = await rejectsCode(open(d, oldKey), 'SCS_MASTER_KEY_ROTATED');
      assert.match(
        replaced.message,
        /was replaced by "key rotate" at .* by test \(audit entry \d+\): copy the new key file/,
      );
      assert.ok(replaced.message.includes(r.oldKey));

      const store = await open(d);
      try {
        await assertReadable(store, pairs);
        const [rotated] = await store.audit.list({ action: 'key.rotate' });
        assert.equal(rotated?.detail.dataKeys, 1);
        assert.equal((await store.audit.verify()).ok, true);
      } finally {
        await store.close();
      }
      // The key never appears in the database files.
      const keyBytes = Buffer.from(after.trim(), 'hex');
      for (const name of readdirSync(d.dir).filter((n) => n.startsWith('scs.db'))) {
        const bytes = readFileSync(path.join(d.dir, name));
        assert.equal(bytes.includes(keyBytes), false, name);
        assert.equal(bytes.includes(Buffer.from(after.trim())), false, name);
      }
    } finally {
      rmSync(d.dir, { recursive: true, force: true });
    }
  });

  for (const crashAfter of ['old-kept', 'next-written', 'rewrapped', 'installed'] as const) {
    it(`a crash after step "${crashAfter}" leaves a key that opens the database, and the next rotation completes`, async () => {
      const d = tempDir();
      try {
        const pairs = await seed(d, 5);
        await assert.rejects(
          rotateSqliteMasterKey({
            file: d.db,
            masterKeyFile: d.key,
            actor: 'test',
            afterStep: (s: RotationStep) => {
              if (s === crashAfter) throw new Error(`crash after ${s}`);
            },
          }),
          /crash after/,
        );
        // A restart: the store opens (finishing the rename if the re-wrap had committed).
        let store = await open(d);
        try {
          await assertReadable(store, pairs);
        } finally {
          await store.close();
        }
        if (crashAfter === 'rewrapped') assert.equal(existsSync(pendingKeyFile(d.key)), false);
        await rotateSqliteMasterKey({ file: d.db, masterKeyFile: d.key, actor: 'test' });
        assert.equal(existsSync(pendingKeyFile(d.key)), false);
        assert.equal(existsSync(retiredKeyFile(d.key)), false);
        store = await open(d);
        try {
          await assertReadable(store, pairs);
          assert.equal((await store.audit.verify()).ok, true);
        } finally {
          await store.close();
        }
      } finally {
        rmSync(d.dir, { recursive: true, force: true });
      }
    });
  }

  it('refuses to rotate when there is no database, and creates nothing', async () => {
    const d = tempDir();
    try {
      await rejectsCode(
        rotateSqliteMasterKey({ file: d.db, masterKeyFile: d.key, actor: 'test' }),
        'SCS_ARGUMENT_INVALID',
      );
      assert.deepEqual(readdirSync(d.dir), []);
    } finally {
      rmSync(d.dir, { recursive: true, force: true });
    }
  });
});

describe('start-up with a wrong or missing master key', () => {
  async function start(d: Dir): Promise<Error> {
    const config = loadConfig({
      flags: { dataDir: d.dir, helloHost: '127.0.0.1', helloPort: 0, logLevel: 'silent' },
      env: {},
    });
    try {
      const server = await startServer(config, { log: createLogger('silent') });
      await server.stop();
    } catch (e) {
      if (e instanceof Error) return e;
    }
    assert.fail('the server started');
  }

  it('a wrong key: SCS_MASTER_KEY_MISMATCH naming the cause, and every file in the data directory is byte-identical', async () => {
    const d = tempDir();
    try {
      await seed(d, 3);
      writeFileSync(d.key, `${'ab'.repeat(32)}\n`, { mode: 0o600 });
      const before = snapshot(d.dir);
      const error = await start(d);
      assert.ok(isScsError(error) && error.code === 'SCS_MASTER_KEY_MISMATCH', String(error));
      assert.match(error.message, /wrong key file|another installation/);
      assert.deepEqual(snapshot(d.dir), before);
    } finally {
      rmSync(d.dir, { recursive: true, force: true });
    }
  });

  it('a missing key file: SCS_MASTER_KEY_INVALID saying to restore it, no key is created and no file changes', async () => {
    const d = tempDir();
    try {
      await seed(d, 3);
      rmSync(d.key);
      const before = snapshot(d.dir);
      const error = await start(d);
      assert.ok(isScsError(error) && error.code === 'SCS_MASTER_KEY_INVALID', String(error));
      assert.match(error.message, /does not exist but the database does: restore the key file/);
      assert.deepEqual(snapshot(d.dir), before);
      assert.equal(existsSync(d.key), false);
    } finally {
      rmSync(d.dir, { recursive: true, force: true });
    }
  });

  it('a stale <key>.next that does not open the database is not used and not touched', async () => {
    const d = tempDir();
    try {
      await seed(d, 3);
      writeFileSync(d.key, `${'cd'.repeat(32)}\n`, { mode: 0o600 });
      writeFileSync(pendingKeyFile(d.key), `${'ef'.repeat(32)}\n`, { mode: 0o600 });
      const before = snapshot(d.dir);
      const error = await start(d);
      assert.ok(isScsError(error) && error.code === 'SCS_MASTER_KEY_MISMATCH', String(error));
      assert.deepEqual(snapshot(d.dir), before);
    } finally {
      rmSync(d.dir, { recursive: true, force: true });
    }
  });
});

function cli(args: readonly string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  return once(child, 'exit').then(([code]) => ({ code: code as number | null, out, err }));
}

describe('backup', () => {
  it('a backup taken while PSKs are being written is one consistent commit: it opens with the key, its audit chain verifies, its PSK count matches its audit', async () => {
    const d = tempDir();
    const store = await open(d);
    let writing = true;
    let batches = 0;
    const writer = (async () => {
      while (writing) {
        const pairs = Array.from({ length: 100 }, () => ({ pid: generatePid(), pps: new Secret(generatePps()) }));
        await store.psks.insertMany(
          pairs.map((p) => ({ ...p, batch: 'lab' })),
          { actor: 'test', source: 'generate' },
        );
        batches++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    const target = path.join(d.dir, 'backup.db');
    try {
      while (batches < 5) await new Promise((r) => setTimeout(r, 10));
      // Another process, as an operator would run it next to the server.
      const r = await cli(['--data-dir', d.dir, 'backup', target]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /backup written: .*backup\.db \(\d+ bytes, \d+ PSKs, audit head seq \d+, integrity ok\)/);
      assert.match(r.err, /the master key is not in the backup/);
      assert.ok(batches > 5, 'the writer kept writing while the backup ran');
    } finally {
      writing = false;
      await writer;
      await store.close();
    }
    try {
      const copy = await openStore({ db: `sqlite:${target}`, masterKeyFile: d.key });
      try {
        assert.equal(copy.masterKey.created, false);
        assert.equal((await copy.store.audit.verify()).ok, true);
        const psks = (await copy.store.psks.countByState()).available;
        const generated = await copy.store.audit.list({ action: 'psk.generate', limit: 10_000 });
        assert.equal(
          psks,
          generated.reduce((n, e) => n + e.pids.length, 0),
        );
        assert.ok(psks > 0);
      } finally {
        await copy.store.close();
      }
      const keyHex = readFileSync(d.key, 'utf8').trim();
      const bytes = readFileSync(target);
      assert.equal(bytes.includes(Buffer.from(keyHex, 'hex')), false);
      assert.equal(bytes.includes(Buffer.from(keyHex)), false);
    } finally {
      rmSync(d.dir, { recursive: true, force: true });
    }
  });

  it('--with-master-key copies the key (0600) next to the backup with a warning; an existing target is refused', async () => {
    const d = tempDir();
    try {
      await seed(d, 2);
      const target = path.join(d.dir, 'b.db');
      const r = await cli(['--data-dir', d.dir, 'backup', target, '--with-master-key']);
      assert.equal(r.code, 0, r.err);
      assert.match(r.err, /WARNING: the master key was copied to .*b\.db\.master\.key/);
      assert.equal(readFileSync(`${target}.master.key`, 'utf8'), readFileSync(d.key, 'utf8'));
      assert.equal(statSync(`${target}.master.key`).mode & 0o777, 0o600);
      const before = snapshot(d.dir);
      await rejectsCode(backupSqlite({ file: d.db, target }), 'SCS_ARGUMENT_INVALID');
      assert.deepEqual(snapshot(d.dir), before);
    } finally {
      rmSync(d.dir, { recursive: true, force: true });
    }
  });

  it('`key rotate` from the CLI while a store is open: the open store keeps working, the next open uses the new key', async () => {
    const d = tempDir();
    try {
      const pairs = await seed(d, 3);
      const store = await open(d);
      try {
        const r = await cli(['--data-dir', d.dir, 'key', 'rotate']);
        assert.equal(r.code, 0, r.err);
        assert.match(r.out, /master key rotated: 1 data key\(s\) re-wrapped/);
        await assertReadable(store, pairs);
      } finally {
        await store.close();
      }
      const again = await open(d);
      try {
        await assertReadable(again, pairs);
      } finally {
        await again.close();
      }
    } finally {
      rmSync(d.dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// PostgreSQL master key rotation, and data key rotation on both engines

/** An installation under test: its --db, its key file, and raw reads that bypass the store. */
interface Install {
  readonly engine: 'sqlite' | 'postgres';
  readonly db: string;
  readonly dir: string;
  readonly key: string;
  /** Every sealed blob's data key id, per table (raw read, no store). */
  keyIds(): Promise<Record<string, number[]>>;
  dataKeys(): Promise<{ id: number; status: string; wrapped: string }[]>;
  auditHead(): Promise<string>;
  drop(): Promise<void>;
}

const SEALED: readonly (readonly [string, string])[] = SEALED_COLUMNS.map((c) => [c.table, c.blob]);

function sqliteInstall(): Install {
  const d = tempDir();
  const read = <T>(fn: (db: Database.Database) => T): T => {
    const db = new Database(d.db, { readonly: true });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  return {
    engine: 'sqlite',
    db: `sqlite:${d.db}`,
    dir: d.dir,
    key: d.key,
    keyIds: () =>
      Promise.resolve(
        read((db) =>
          Object.fromEntries(
            SEALED.map(([t, c]) => [
              t,
              (db.prepare(`select ${c} as b from ${t} where ${c} is not null`).all() as { b: Buffer }[]).map((r) =>
                readKeyId(r.b),
              ),
            ]),
          ),
        ),
      ),
    dataKeys: () =>
      Promise.resolve(
        read((db) =>
          (
            db.prepare('select key_id, status, wrapped from data_keys order by key_id').all() as {
              key_id: number;
              status: string;
              wrapped: Buffer;
            }[]
          ).map((r) => ({ id: r.key_id, status: r.status, wrapped: r.wrapped.toString('hex') })),
        ),
      ),
    auditHead: () =>
      Promise.resolve(read((db) => JSON.stringify(db.prepare('select seq, hash from audit_head').get()))),
    drop: () => Promise.resolve(rmSync(d.dir, { recursive: true, force: true })),
  };
}

async function postgresInstall(serverUrl: string): Promise<Install> {
  const fresh = await freshSchema(serverUrl);
  const dir = mkdtempSync(path.join(tmpdir(), 'scs-keys-pg-'));
  return {
    engine: 'postgres',
    db: fresh.url,
    dir,
    key: path.join(dir, 'master.key'),
    keyIds: async () => {
      const out: Record<string, number[]> = {};
      for (const [t, c] of SEALED) {
        out[t] = (await fresh.query(`select ${c} as b from ${t} where ${c} is not null`)).map((r) =>
          readKeyId(r.b as Buffer),
        );
      }
      return out;
    },
    dataKeys: async () =>
      (await fresh.query('select key_id, status, wrapped from data_keys order by key_id')).map((r) => ({
        id: Number(r.key_id),
        status: String(r.status),
        wrapped: (r.wrapped as Buffer).toString('hex'),
      })),
    auditHead: async () => JSON.stringify(await fresh.query('select seq, hash from audit_head')),
    drop: async () => {
      await fresh.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function openAt(i: Install, key = i.key): Promise<Store> {
  return (await openStore({ db: i.db, masterKeyFile: key })).store;
}

interface Secrets {
  readonly pairs: PskPair[];
  readonly escrowId: number;
  readonly caKey: Buffer;
}

/** PSKs, a profile password, an escrowed password and the CA: one secret of every sealed kind but PKI. */
async function seedSecrets(store: Store, psks: number): Promise<Secrets> {
  const pairs = Array.from({ length: psks }, () => ({ pid: generatePid(), pps: new Secret(generatePps()) }));
  await store.psks.insertMany(
    pairs.map((p) => ({ ...p, batch: 'lab' })),
    { actor: 'test', source: 'generate' },
  );
  await store.profiles.update(
    'default',
    { secrets: { currentMebxPassword: new Secret('Curr3nt-Mebx!') } },
    { actor: 'test' },
  );
  const escrowId = await store.escrow.put(
    { deviceUuid: '8d2e4c1a-0b6f-4e39-9a57-3c1d2e4f5a6b', purpose: 'admin', secret: new Secret('Adm1n-Pa55word!') },
    { actor: 'test' },
  );
  const ca = await createCaMaterial('keys test CA');
  await store.ca.create(ca, { actor: 'test' });
  return { pairs, escrowId, caKey: Buffer.from(ca.keyPkcs8.reveal()) };
}

async function assertSecrets(store: Store, s: Secrets): Promise<void> {
  await assertReadable(store, s.pairs);
  assert.equal((await store.profiles.secrets('default')).currentMebxPassword?.reveal(), 'Curr3nt-Mebx!');
  assert.equal((await store.escrow.open(s.escrowId)).secret.reveal(), 'Adm1n-Pa55word!');
  assert.ok((await store.ca.get())?.keyPkcs8.reveal().equals(s.caKey));
}

const pgServer = await pgTestServer();

describe('master key rotation on PostgreSQL', { skip: pgServer.skip }, () => {
  it('re-wraps the data keys in one transaction; a running node keeps working; a node started with the old key file fails with SCS_MASTER_KEY_ROTATED and changes nothing, and starts once given the new file', async () => {
    const i = await postgresInstall(pgServer.url as string);
    try {
      const a = await openAt(i);
      const secrets = await seedSecrets(a, 30);
      // Node B: its own copy of the key file, running since before the rotation.
      const keyB = path.join(i.dir, 'node-b.key');
      writeFileSync(keyB, readFileSync(i.key), { mode: 0o600 });
      const b = await openAt(i, keyB);
      await a.close();
      const wrappedBefore = await i.dataKeys();
      const r = await rotateMasterKey({
        open: () => openStore({ db: i.db, masterKeyFile: i.key }),
        masterKeyFile: i.key,
        actor: 'test',
      });
      assert.equal(r.dataKeys, 1);
      assert.notEqual((await i.dataKeys())[0]?.wrapped, wrappedBefore[0]?.wrapped);
      assert.equal(existsSync(pendingKeyFile(i.key)), false);
      assert.equal(existsSync(retiredKeyFile(i.key)), false);
      // The running node holds the unwrapped data keys: unaffected.
      await assertSecrets(b, secrets);
      await b.close();
      // Restarted with the old file: a named refusal, no row changed.
      const head = await i.auditHead();
      const keys = JSON.stringify(await i.dataKeys());
      const e = await rejectsCode(openAt(i, keyB), 'SCS_MASTER_KEY_ROTATED');
      assert.match(e.message, /node-b\.key \(fingerprint [0-9a-f]{16}\) was replaced by "key rotate" at .* by test/);
      assert.ok(e.message.includes(r.oldKey));
      assert.equal(await i.auditHead(), head);
      assert.equal(JSON.stringify(await i.dataKeys()), keys);
      // Given the new file, it starts and reads everything; the chain holds the rotation.
      writeFileSync(keyB, readFileSync(i.key));
      const again = await openAt(i, keyB);
      try {
        await assertSecrets(again, secrets);
        const [entry] = await again.audit.list({ action: 'key.rotate' });
        assert.equal(entry?.detail.oldKey, r.oldKey);
        assert.equal(entry?.detail.newKey, r.newKey);
        assert.equal((await again.audit.verify()).ok, true);
      } finally {
        await again.close();
      }
      // A key of another installation is still "mismatch", not "rotated".
      writeFileSync(keyB, `${'ab'.repeat(32)}\n`);
      await rejectsCode(openAt(i, keyB), 'SCS_MASTER_KEY_MISMATCH');
    } finally {
      await i.drop();
    }
  });

  for (const killAfter of ['old-kept', 'next-written', 'rewrapped'] as const) {
    it(`SIGKILL after step "${killAfter}": the next start opens the database (finishing the rename if the re-wrap committed), every secret reads the same, and the next rotation completes`, async () => {
      const i = await postgresInstall(pgServer.url as string);
      try {
        const s = await openAt(i);
        const secrets = await seedSecrets(s, 10);
        await s.close();
        const r = await rotateInChildAndDie(i, killAfter);
        assert.equal(r.signal, 'SIGKILL', r.output);
        const committed = killAfter === 'rewrapped';
        // The new key was written (from "next-written" on) but not installed yet.
        assert.equal(existsSync(pendingKeyFile(i.key)), killAfter !== 'old-kept');
        assert.equal(existsSync(retiredKeyFile(i.key)), true);
        const store = await openAt(i);
        try {
          await assertSecrets(store, secrets);
          assert.equal((await store.audit.list({ action: 'key.rotate' })).length, committed ? 1 : 0);
        } finally {
          await store.close();
        }
        // Committed: the start installed <key>.next. Not committed: a stale <key>.next stays untouched.
        assert.equal(existsSync(pendingKeyFile(i.key)), killAfter === 'next-written');
        await rotateMasterKey({
          open: () => openStore({ db: i.db, masterKeyFile: i.key }),
          masterKeyFile: i.key,
          actor: 'test',
        });
        assert.equal(existsSync(pendingKeyFile(i.key)), false);
        assert.equal(existsSync(retiredKeyFile(i.key)), false);
        const after = await openAt(i);
        try {
          await assertSecrets(after, secrets);
          assert.equal((await after.audit.verify()).ok, true);
        } finally {
          await after.close();
        }
      } finally {
        await i.drop();
      }
    });
  }

  it('`key rotate` from the CLI on a PostgreSQL database: rotated, with the copy-to-every-node advice', async () => {
    const i = await postgresInstall(pgServer.url as string);
    try {
      const s = await openAt(i);
      const secrets = await seedSecrets(s, 3);
      const r = await cli(['--db', i.db, '--master-key-file', i.key, 'key', 'rotate']);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /master key rotated: 1 data key\(s\) re-wrapped; the new key \(fingerprint [0-9a-f]{16}\)/);
      assert.match(r.err, /copy it to every other node now/);
      await assertSecrets(s, secrets);
      await s.close();
    } finally {
      await i.drop();
    }
  });
});

/**
 * Runs rotateMasterKey in another process that kills itself with SIGKILL right after `step`: a
 * real kill at an exact point (no finally block runs, the connection is dropped).
 */
async function rotateInChildAndDie(
  i: Install,
  step: RotationStep,
): Promise<{ signal: NodeJS.Signals | null; output: string }> {
  const script = path.join(i.dir, 'rotate-and-die.mts');
  writeFileSync(
    script,
    [
      `import { openStore } from ${JSON.stringify(path.join(ROOT, 'src/store/open.ts'))};`,
      `import { rotateMasterKey } from ${JSON.stringify(path.join(ROOT, 'src/store/sql/rewrap-data-keys.ts'))};`,
      `const cfg = { db: ${JSON.stringify(i.db)}, masterKeyFile: ${JSON.stringify(i.key)} };`,
      `await rotateMasterKey({ open: () => openStore(cfg), masterKeyFile: cfg.masterKeyFile, actor: 'test',`,
      `  afterStep: (s) => { if (s === ${JSON.stringify(step)}) process.kill(process.pid, 'SIGKILL'); } });`,
    ].join('\n'),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const [, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { signal, output };
}

const engines: readonly { readonly name: 'sqlite' | 'postgres'; readonly skip: string | undefined }[] = [
  { name: 'sqlite', skip: undefined },
  { name: 'postgres', skip: pgServer.skip },
];

for (const engine of engines) {
  const install = (): Promise<Install> =>
    engine.name === 'sqlite' ? Promise.resolve(sqliteInstall()) : postgresInstall(pgServer.url as string);

  describe(`data key rotation (${engine.name})`, { skip: engine.skip }, () => {
    it('re-seals every secret (PSKs, profile password, escrowed password, CA key) under a new data key in batches, deletes the old key, audits start and finish; every secret reads the same', async () => {
      const i = await install();
      try {
        const s = await openAt(i);
        const secrets = await seedSecrets(s, 2500);
        await s.close();
        assert.deepEqual(
          (await i.dataKeys()).map((k) => [k.id, k.status]),
          [[1, 'active']],
        );
        const raw = await openStore({ db: i.db, masterKeyFile: i.key });
        const progress: DataKeyProgress[] = [];
        let result: RotateDataKeyResult;
        try {
          const { db, engine: sqlEngine } = SqlStore.rawOf(raw.store) as NonNullable<ReturnType<typeof SqlStore.rawOf>>;
          result = await rotateDataKey(db, sqlEngine, readKey(i.key), {
            actor: 'test',
            batchSize: 1000,
            settleMs: 0,
            onProgress: (p) => progress.push(p),
          });
        } finally {
          await raw.store.close();
        }
        assert.equal(result.keyId, 2);
        assert.equal(result.resumed, false);
        assert.deepEqual(result.deleted, [1]);
        assert.deepEqual(result.resealed, { psks: 2500, profiles: 1, escrow: 1, ca: 1, pki_certs: 0 });
        // Three batches of PSKs, with their progress.
        assert.deepEqual(
          progress.filter((p) => p.table === 'psks').map((p) => p.done),
          [1000, 2000, 2500],
        );
        assert.deepEqual(
          (await i.dataKeys()).map((k) => [k.id, k.status]),
          [[2, 'active']],
        );
        for (const [table, ids] of Object.entries(await i.keyIds())) {
          assert.ok(
            ids.every((id) => id === 2),
            `${table}: ${ids.filter((id) => id !== 2).length} blobs not under key 2`,
          );
        }
        const after = await openAt(i);
        try {
          await assertSecrets(after, secrets);
          const entries = await after.audit.list({ action: 'key.data.rotate' });
          assert.deepEqual(
            entries.map((e) => e.detail.phase),
            ['finish', 'start'],
          );
          assert.equal(entries[0]?.detail.deleted, '1');
          assert.equal(entries[0]?.detail.resealed_psks, 2500);
          assert.equal((await after.audit.verify()).ok, true);
        } finally {
          await after.close();
        }
      } finally {
        await i.drop();
      }
    });

    it('SIGKILL of `key rotate --data-key` in the middle of re-sealing: every secret reads the same after the restart, and running the command again resumes and deletes the old key', async () => {
      const i = await install();
      try {
        const s = await openAt(i);
        const secrets = await seedSecrets(s, 3000);
        await s.close();
        const child = spawn(
          process.execPath,
          [
            '--import',
            'tsx',
            path.join(ROOT, 'src/cli/main.ts'),
            '--db',
            i.db,
            '--master-key-file',
            i.key,
            'key',
            'rotate',
            '--data-key',
            '--batch-size',
            '100',
          ],
          {
            cwd: ROOT,
            env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let err = '';
        const exited = once(child, 'exit');
        // Killed as soon as the first batch of PSKs is reported: 29 batches are still to come.
        await new Promise<void>((resolve) => {
          child.stderr.on('data', (b: Buffer) => {
            err += b.toString();
            if (/psks: \d+\/3000 re-sealed/.test(err)) resolve();
          });
          void exited.then(() => resolve());
        });
        child.kill('SIGKILL');
        const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
        assert.equal(signal, 'SIGKILL', `the command ended by itself (${String(code)}): ${err}`);
        const mid = await i.keyIds();
        const psksUnder = (id: number): number => (mid.psks ?? []).filter((k) => k === id).length;
        assert.ok(
          psksUnder(2) > 0 && psksUnder(1) > 0,
          `mid-work: ${psksUnder(1)} under key 1, ${psksUnder(2)} under key 2`,
        );
        assert.deepEqual(
          (await i.dataKeys()).map((k) => [k.id, k.status]),
          [
            [1, 'retired'],
            [2, 'active'],
          ],
        );
        const store = await openAt(i);
        try {
          await assertSecrets(store, secrets);
        } finally {
          await store.close();
        }
        const r = await cli(['--db', i.db, '--master-key-file', i.key, 'key', 'rotate', '--data-key']);
        assert.equal(r.code, 0, r.err);
        assert.match(
          r.out,
          /data key 2 is now the data key \(an interrupted rotation was resumed\); re-sealed: psks \d+.*; deleted data key\(s\): 1/,
        );
        assert.deepEqual(
          (await i.dataKeys()).map((k) => [k.id, k.status]),
          [[2, 'active']],
        );
        const after = await openAt(i);
        try {
          await assertSecrets(after, secrets);
          assert.deepEqual(
            (await after.audit.list({ action: 'key.data.rotate' })).map((e) => e.detail.phase),
            ['finish', 'resume', 'start'],
          );
          assert.equal((await after.audit.verify()).ok, true);
        } finally {
          await after.close();
        }
      } finally {
        await i.drop();
      }
    });

    it('a store open before the rotation (a running server) reads every secret during and after it, and seals new secrets under the new key once it loaded it', async () => {
      const i = await install();
      try {
        const server = await openAt(i);
        const secrets = await seedSecrets(server, 500);
        let reads = 0;
        let rotating = true;
        const reader = (async () => {
          // Reads while the rotation runs: any secret that did not open would throw here.
          while (rotating) {
            await assertSecrets(server, { ...secrets, pairs: secrets.pairs.slice(reads % 400, (reads % 400) + 100) });
            reads++;
            await new Promise((r) => setTimeout(r, 20));
          }
        })();
        try {
          // Another process, as an operator runs it next to the server; the default settle time
          // lets the open store (which polls data_keys every few seconds) load the new key first.
          const r = await cli([
            '--db',
            i.db,
            '--master-key-file',
            i.key,
            'key',
            'rotate',
            '--data-key',
            '--batch-size',
            '100',
          ]);
          assert.equal(r.code, 0, r.err);
          assert.match(
            r.out,
            /data key 2 is now the data key; re-sealed: psks 500, profiles 1, escrow 1, ca 1; deleted data key\(s\): 1/,
          );
        } finally {
          rotating = false;
          await reader;
        }
        assert.ok(reads > 0);
        await assertSecrets(server, secrets);
        const late = { pid: generatePid(), pps: new Secret(generatePps()) };
        await server.psks.insertMany([{ ...late, batch: 'late' }], { actor: 'test', source: 'generate' });
        await server.close();
        assert.ok((await i.keyIds()).psks?.every((id) => id === 2));
        const fresh = await openAt(i);
        try {
          await assertReadable(fresh, [late]);
        } finally {
          await fresh.close();
        }
      } finally {
        await i.drop();
      }
    });
  });
}

describe('data key rotation after a master key rotation', () => {
  it('a store running since before both rotations loads the new data key with the new key file (its master key in memory no longer unwraps it) and reads every secret', async () => {
    const i = sqliteInstall();
    try {
      const server = await openAt(i);
      const secrets = await seedSecrets(server, 200);
      // The master key is replaced on disk; the running store still holds the old one in memory.
      await rotateSqliteMasterKey({ file: i.db.slice('sqlite:'.length), masterKeyFile: i.key, actor: 'test' });
      const r = await cli(['--db', i.db, '--master-key-file', i.key, 'key', 'rotate', '--data-key']);
      assert.equal(r.code, 0, r.err);
      assert.match(
        r.out,
        /data key 2 is now the data key; re-sealed: psks 200, profiles 1, escrow 1, ca 1; deleted data key\(s\): 1/,
      );
      // Key 1 is gone and every blob is under key 2: reading proves the store loaded key 2.
      assert.deepEqual(
        (await i.dataKeys()).map((k) => [k.id, k.status]),
        [[2, 'active']],
      );
      await assertSecrets(server, secrets);
      await server.close();
    } finally {
      await i.drop();
    }
  });
});

function readKey(file: string): Buffer {
  return Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
}
