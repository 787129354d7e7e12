import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { isScsError, type ErrorCode } from '../errors.ts';
import { generateDataKey, OVERHEAD, readKeyId, SecretBox, unwrapDataKey, wrapDataKey } from './envelope.ts';
import { loadMasterKey, parseMasterKey } from './masterKey.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'scs-crypto-'));
  dirs.push(d);
  return d;
}

function throwsCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (e) => isScsError(e, code));
}

const PPS = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZ012345', 'latin1');

describe('master key file', () => {
  it('reads 64 hex digits, base64 and base64url, ignoring surrounding whitespace', () => {
    const key = randomBytes(32);
    assert.deepEqual(parseMasterKey(`  ${key.toString('hex').toUpperCase()}\n`, 'f'), key);
    assert.deepEqual(parseMasterKey(`${key.toString('base64')}\n`, 'f'), key);
    assert.deepEqual(parseMasterKey(key.toString('base64url'), 'f'), key);
  });

  it('rejects anything that is not 32 bytes, naming the file but never its content', () => {
    for (const text of [
      '',
      'abc',
      randomBytes(31).toString('hex'),
      randomBytes(33).toString('base64'),
      `${'z'.repeat(64)}`,
    ]) {
      assert.throws(
        () => parseMasterKey(text, '/etc/scs/master.key'),
        (e) =>
          isScsError(e, 'SCS_MASTER_KEY_INVALID') &&
          e.message.includes('/etc/scs/master.key') &&
          (text === '' || !e.message.includes(text)),
      );
    }
  });

  it('creates a missing key file with mode 0600 in a new 0700 directory and reports that it did', async () => {
    const file = path.join(tempDir(), 'new', 'dir', 'master.key');
    const created = await loadMasterKey(file, { databaseExists: false });
    assert.equal(created.created, true);
    assert.equal(created.key.reveal().length, 32);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
    assert.equal(String(created.key), '[redacted]');
    const again = await loadMasterKey(file, { databaseExists: true });
    assert.equal(again.created, false);
    assert.deepEqual(again.key.reveal(), created.key.reveal());
    assert.deepEqual(readdirSync(path.dirname(file)), ['master.key']); // no temporary file left behind
  });

  it('ends with one key when several starts race to create it', async () => {
    const file = path.join(tempDir(), 'master.key');
    const results = await Promise.all(Array.from({ length: 8 }, () => loadMasterKey(file, { databaseExists: false })));
    assert.equal(results.filter((r) => r.created).length, 1);
    for (const r of results) assert.deepEqual(r.key.reveal(), parseMasterKey(readFileSync(file, 'utf8'), file));
  });

  it('never creates a key when the database already exists', async () => {
    const file = path.join(tempDir(), 'master.key');
    await assert.rejects(
      loadMasterKey(file, { databaseExists: true }),
      (e) => isScsError(e, 'SCS_MASTER_KEY_INVALID') && /restore the key file from your backup/.test(e.message),
    );
    assert.equal(existsSync(file), false);
  });

  it('reports a key path it cannot read as a file error, and the permission bits it found', async () => {
    const dir = tempDir();
    const asDir = path.join(dir, 'is-a-dir');
    mkdirSync(asDir);
    await assert.rejects(loadMasterKey(asDir, { databaseExists: false }), (e) => isScsError(e, 'SCS_FILE_IO'));
    const loose = path.join(dir, 'loose.key');
    writeFileSync(loose, randomBytes(32).toString('hex'), { mode: 0o644 });
    assert.equal((await loadMasterKey(loose, { databaseExists: true })).mode, 0o644);
  });
});

describe('envelope encryption', () => {
  const dek = generateDataKey();
  const box = new SecretBox([[7, dek]], 7);

  it('seals to version | key id | iv | tag | ciphertext and opens with the same owner', () => {
    const blob = box.seal(PPS, 'ABCD1234');
    assert.equal(blob.length, OVERHEAD + PPS.length);
    assert.equal(blob[0], 1);
    assert.equal(readKeyId(blob), 7);
    assert.ok(!blob.includes(PPS));
    assert.deepEqual(box.open(blob, 'ABCD1234'), PPS);
  });

  it('uses a fresh IV for every seal', () => {
    const ivs = new Set(Array.from({ length: 5000 }, () => box.seal(PPS, 'ABCD1234').subarray(5, 17).toString('hex')));
    assert.equal(ivs.size, 5000);
  });

  it('refuses a blob moved to another owner, with any single bit flipped, truncated, or under another key', () => {
    const blob = box.seal(PPS, 'ABCD1234');
    throwsCode(() => box.open(blob, 'ABCD1235'), 'SCS_SECRET_UNREADABLE');
    for (let i = 0; i < blob.length; i++) {
      const bad = Buffer.from(blob);
      bad[i] = (bad[i] ?? 0) ^ 0x01;
      throwsCode(() => box.open(bad, 'ABCD1234'), 'SCS_SECRET_UNREADABLE');
    }
    throwsCode(() => box.open(blob.subarray(0, blob.length - 1), 'ABCD1234'), 'SCS_SECRET_UNREADABLE');
    throwsCode(() => box.open(blob.subarray(0, 20), 'ABCD1234'), 'SCS_SECRET_UNREADABLE');
    const other = new SecretBox([[7, generateDataKey()]], 7);
    throwsCode(() => other.open(blob, 'ABCD1234'), 'SCS_SECRET_UNREADABLE');
    const unknownId = new SecretBox([[8, dek]], 8);
    throwsCode(() => unknownId.open(blob, 'ABCD1234'), 'SCS_SECRET_UNREADABLE');
  });

  it('opens blobs of older keys and seals under the current one (rotation)', () => {
    const older = generateDataKey();
    const old = new SecretBox([[1, older]], 1).seal(PPS, 'P');
    const both = new SecretBox(
      [
        [1, older],
        [2, generateDataKey()],
      ],
      2,
    );
    assert.deepEqual(both.open(old, 'P'), PPS);
    assert.equal(readKeyId(both.seal(PPS, 'P')), 2);
  });

  it('wraps a data key under the master key and refuses a wrong master key or key id', () => {
    const master = randomBytes(32);
    const wrapped = wrapDataKey(master, 3, dek);
    assert.ok(!wrapped.includes(dek));
    assert.deepEqual(unwrapDataKey(master, 3, wrapped), dek);
    throwsCode(() => unwrapDataKey(randomBytes(32), 3, wrapped), 'SCS_MASTER_KEY_MISMATCH');
    throwsCode(() => unwrapDataKey(master, 4, wrapped), 'SCS_MASTER_KEY_MISMATCH');
    throwsCode(() => wrapDataKey(randomBytes(16), 1, dek), 'SCS_MASTER_KEY_INVALID');
  });

  it('without the native AES-GCM, seals big batches on a worker thread into blobs the main thread opens', async () => {
    const workerBox = new SecretBox([[7, dek]], 7, { aead: null });
    try {
      const n = 5000;
      const plains = Array.from({ length: n }, (_, i) => Buffer.from(`PPS-${String(i).padStart(28, '0')}`, 'latin1'));
      const owners = Array.from({ length: n }, (_, i) => `OWNER${String(i).padStart(3, '0')}`);
      const blobs = await workerBox.sealMany(plains, owners);
      assert.equal(blobs.length, n);
      assert.equal(workerBox.batchSealer, 'worker');
      for (let i = 0; i < n; i += 97) assert.deepEqual(box.open(blobs[i] as Buffer, owners[i] as string), plains[i]);
      assert.deepEqual(box.open(blobs[n - 1] as Buffer, owners[n - 1] as string), plains[n - 1]);
      // Small batches are sealed inline, same format.
      const [small] = await workerBox.sealMany([PPS], ['X']);
      assert.deepEqual(box.open(small as Buffer, 'X'), PPS);
    } finally {
      await workerBox.close();
    }
  });
});
