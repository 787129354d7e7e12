import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomUUID } from 'node:crypto';
import { generatePid } from '../../psk/generate.ts';
import { useTempStore } from '../../../test/helpers/temp-store.ts';
import type { NewExport } from './transfers.ts';

function setupBinExport(extra: Partial<NewExport> = {}): NewExport {
  return {
    id: randomUUID(),
    format: 'setup-bin',
    file: '/keys/setup.bin',
    tempFile: '/keys/.setup.bin.1.partial',
    status: 'pending',
    recordCount: 3,
    batch: null,
    mode: 'exported',
    sha256: 'a'.repeat(64),
    bytes: 2048,
    setupBinVersion: 2,
    doNotConsume: false,
    bundleId: null,
    actor: 'test',
    ...extra,
  };
}

describe('transfer log store (SQLite)', () => {
  const temp = useTempStore('scs-transfers-');

  it('keeps a setup.bin export with its record number -> PID log and finds it by hash, format and PID', async () => {
    const e = setupBinExport();
    const pids = [generatePid(), generatePid(), generatePid()];
    await temp.store.transaction(async (tx) => {
      await tx.transfers.recordExport(e);
      await tx.transfers.addExportRecords(
        e.id,
        pids.map((pid, i) => ({ number: i + 1, pid })),
      );
    });
    const got = await temp.store.transfers.getExport(e.id);
    assert.equal(got?.doNotConsume, false);
    assert.equal(got.setupBinVersion, 2);
    assert.ok(got.createdAt instanceof Date);
    assert.deepEqual(
      (await temp.store.transfers.findExportsBySha256('a'.repeat(64))).map((x) => x.id),
      [e.id],
    );
    assert.deepEqual(
      (await temp.store.transfers.findSetupBinExports({ version: 2, recordCount: 3, doNotConsume: false })).map(
        (x) => x.id,
      ),
      [e.id],
    );
    assert.deepEqual(
      await temp.store.transfers.findSetupBinExports({ version: 3, recordCount: 3, doNotConsume: false }),
      [],
    );
    assert.deepEqual(await temp.store.transfers.findExportRecordsByPid([pids[1] ?? generatePid()]), [
      { exportId: e.id, number: 2, pid: pids[1] },
    ]);
    assert.deepEqual(await temp.store.transfers.exportRecords(e.id, [3, 1]), [
      { number: 1, pid: pids[0] },
      { number: 3, pid: pids[2] },
    ]);
  });

  it('lists an export as pending until it is completed', async () => {
    const e = setupBinExport({ format: 'bundle', setupBinVersion: null, doNotConsume: null, bundleId: randomUUID() });
    await temp.store.transfers.recordExport(e);
    assert.deepEqual(
      (await temp.store.transfers.pendingExports()).map((x) => [x.id, x.tempFile]),
      [[e.id, e.tempFile]],
    );
    await temp.store.transfers.completeExport(e.id);
    assert.deepEqual(await temp.store.transfers.pendingExports(), []);
    assert.equal((await temp.store.transfers.getExport(e.id))?.status, 'complete');
  });

  it('remembers an imported bundle by its id and rolls the record back with its transaction', async () => {
    const id = randomUUID();
    await assert.rejects(
      temp.store.transaction(async (tx) => {
        await tx.transfers.recordImport({
          bundleId: id,
          file: 'f',
          sourceName: 's',
          recordCount: 2,
          inserted: 2,
          actor: 't',
        });
        throw new Error('abort');
      }),
    );
    assert.equal(await temp.store.transfers.getImport(id), undefined);
    await temp.store.transfers.recordImport({
      bundleId: id,
      file: 'f',
      sourceName: 's',
      recordCount: 2,
      inserted: 2,
      actor: 't',
    });
    const got = await temp.store.transfers.getImport(id);
    assert.equal(got?.inserted, 2);
    assert.ok(got.importedAt instanceof Date);
  });
});
