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
      await rejectsCode(open(d, oldKey), 'SCS_MASTER_KEY_MISMATCH');

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
