import type { Kysely } from 'kysely';
import { unwrapDataKey, wrapDataKey } from '../../crypto/envelope.ts';
import {
  installPendingKey,
  keepRetiredKey,
  masterKeyFingerprint,
  newMasterKey,
  pendingKeyFile,
  readKeyIfPresent,
  removeIfPresent,
  writeKeyFile,
} from '../../crypto/key-rotation.ts';
import { ScsError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { OpenedStore } from '../store.ts';
import { unwrapAll } from './data-keys.ts';
import { appendAudit, SqlStore, type SqlContext } from './sql-store.ts';
import type { StoreDb } from './schema.ts';

/**
 * Step 2 of a master key rotation (src/crypto/key-rotation.ts): in one transaction, every data
 * key is unwrapped with the old master key (a wrong old key fails here, before anything is
 * written) and wrapped again under the new one, and the rotation is audited with both keys'
 * fingerprints (a node started later with the old key is told it was replaced). Secrets sealed
 * under the data keys are not touched: rotation costs one row per data key, not one per PSK.
 * Portable SQL; on PostgreSQL the data key rows are locked (FOR UPDATE), so a concurrent
 * rotation or data key rotation from another node waits and then fails on the old key instead
 * of overwriting.
 */
export async function rewrapDataKeys(
  ctx: Pick<SqlContext, 'root' | 'engine' | 'box'>,
  oldKey: Buffer,
  newKey: Buffer,
  audit: { readonly actor: string; readonly keyFile: string },
): Promise<number> {
  return ctx.root.transaction().execute(async (trx: Kysely<StoreDb>) => {
    let rows = trx.selectFrom('data_keys').select(['key_id', 'wrapped']).orderBy('key_id');
    if (ctx.engine.lockRows) rows = rows.forUpdate();
    const keys = await rows.execute();
    for (const row of keys) {
      const id = Number(row.key_id);
      const dek = unwrapDataKey(oldKey, id, row.wrapped);
      try {
        await trx
          .updateTable('data_keys')
          .set({ wrapped: wrapDataKey(newKey, id, dek) })
          .where('key_id', '=', id)
          .execute();
      } finally {
        dek.fill(0);
      }
    }
    await appendAudit({ ...ctx, q: trx, inTx: true }, [
      {
        actor: audit.actor,
        action: 'key.rotate',
        detail: {
          dataKeys: keys.length,
          keyFile: audit.keyFile,
          oldKey: masterKeyFingerprint(oldKey),
          newKey: masterKeyFingerprint(newKey),
        },
      },
    ]);
    return keys.length;
  });
}

export type RotationStep = 'old-kept' | 'next-written' | 'rewrapped' | 'installed';

export interface RotateMasterKeyOptions {
  /**
   * Opens the store as any command does: checks the current key, migrates, and finishes a
   * rotation of this node that died after its commit (src/store/sql/data-keys.ts, checkMasterKey).
   */
  readonly open: () => Promise<OpenedStore>;
  readonly masterKeyFile: string;
  readonly actor: string;
  readonly log?: Logger;
  /** Tests: called after each step, a throw there plays a crash at that point. */
  readonly afterStep?: (step: RotationStep) => void | Promise<void>;
}

export interface RotateResult {
  readonly dataKeys: number;
  readonly keyFile: string;
  /** Fingerprints (src/crypto/key-rotation.ts) of the key replaced and of the new one. */
  readonly oldKey: string;
  readonly newKey: string;
}

/**
 * `amt-scs key rotate`, SQLite and PostgreSQL: a new master key, every data key re-wrapped under
 * it in one transaction, the key files swapped so that a crash at any point leaves a key that
 * opens the database (src/crypto/key-rotation.ts):
 *
 * 1. `<key>` hard-linked to `<key>.old`; the new key written to `<key>.next` (0600, fsynced);
 * 2. one transaction re-wraps every data key and appends `key.rotate`;
 * 3. `<key>.next` renamed to `<key>`; `<key>.old` removed.
 *
 * Safe while servers run: they hold the unwrapped data keys, which do not change, and read the
 * key file only at start (and when a data key they do not hold appears). Other nodes of a
 * PostgreSQL installation need the new key file before their next start; started with the old
 * one they fail with SCS_MASTER_KEY_ROTATED and change nothing (docs/operations.md).
 */
export async function rotateMasterKey(options: RotateMasterKeyOptions): Promise<RotateResult> {
  const { masterKeyFile, log } = options;
  const step = async (s: RotationStep): Promise<void> => {
    await options.afterStep?.(s);
  };
  const opened = await options.open();
  let dataKeys: number;
  let fingerprints: { oldKey: string; newKey: string };
  try {
    const raw = SqlStore.rawOf(opened.store);
    if (raw === undefined) throw new ScsError('SCS_STORE_UNSUPPORTED', 'key rotate needs an SQL store');
    const oldKey = await readKeyIfPresent(masterKeyFile);
    if (oldKey === undefined) throw new ScsError('SCS_MASTER_KEY_INVALID', `master key file ${masterKeyFile} is gone`);
    const newKey = newMasterKey();
    try {
      // The current key opens the database, so a leftover <key>.next is from a rotation that never committed.
      await removeIfPresent(pendingKeyFile(masterKeyFile));
      await keepRetiredKey(masterKeyFile);
      await step('old-kept');
      await writeKeyFile(pendingKeyFile(masterKeyFile), newKey);
      await step('next-written');
      // Unwrapping with the key file's key checks it again (the file could have changed since the open).
      const box = await unwrapAll(raw.db, oldKey);
      try {
        dataKeys = await rewrapDataKeys({ root: raw.db, engine: raw.engine, box }, oldKey, newKey, {
          actor: options.actor,
          keyFile: masterKeyFile,
        });
      } finally {
        await box.close();
      }
      fingerprints = { oldKey: masterKeyFingerprint(oldKey), newKey: masterKeyFingerprint(newKey) };
    } finally {
      oldKey.fill(0);
      newKey.fill(0);
    }
  } finally {
    await opened.store.close();
  }
  await step('rewrapped');
  await installPendingKey(masterKeyFile);
  await step('installed');
  log?.info({ file: masterKeyFile, dataKeys, ...fingerprints }, 'master key rotated');
  return { dataKeys, keyFile: masterKeyFile, ...fingerprints };
}
