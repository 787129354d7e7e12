import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { AtomicFile, EXPORT_FILE_MODE } from './atomic-file.ts';

describe('atomic export file', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'amt-scs-atomic-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a file larger than the background flush interval completely, with mode 0600, and leaves no temp file', async () => {
    // 20 MiB in 64 KiB writes: background fdatasyncs start at 8 and 16 MiB while writing goes on.
    const data = randomBytes(20 * 1024 * 1024);
    const file = path.join(dir, 'big.bundle');
    const target = await AtomicFile.create(file);
    for (let at = 0; at < data.length; at += 64 * 1024) await target.write(data.subarray(at, at + 64 * 1024));
    assert.deepEqual(readdirSync(dir), [path.basename(target.tempFile)], 'only the temp name exists before publish');
    await target.sync();
    await target.publish();
    assert.ok(readFileSync(file).equals(data));
    assert.equal(statSync(file).mode & 0o777, EXPORT_FILE_MODE);
    assert.deepEqual(readdirSync(dir), ['big.bundle']);
  });

  it('discards a half-written file, background flush included', async () => {
    const file = path.join(dir, 'dropped.bundle');
    const target = await AtomicFile.create(file);
    await target.write(randomBytes(9 * 1024 * 1024));
    await target.discard();
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.includes('dropped')),
      [],
    );
  });
});
