import { existsSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { Kysely } from 'kysely';
import { SecretBox, unwrapDataKey } from '../../crypto/envelope.ts';
import {
  installPendingKey,
  keepRetiredKey,
  newMasterKey,
  pendingKeyFile,
  readKeyIfPresent,
  removeIfPresent,
  writeKeyFile,
} from '../../crypto/key-rotation.ts';
import { ScsError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { rewrapDataKeys } from '../sql/rewrap-data-keys.ts';
import type { StoreDb } from '../sql/schema.ts';
import { ImmediateSqliteDialect } from './dialect.ts';
import { openSqliteStore } from './open-sqlite.ts';

export interface RotateOptions {
  readonly file: string;
  readonly masterKeyFile: string;
  readonly actor: string;
  readonly log?: Logger;
  /** Tests: called after each step, a throw there plays a crash at that point. */
  readonly afterStep?: (step: RotationStep) => void | Promise<void>;
}

export type RotationStep = 'old-kept' | 'next-written' | 'rewrapped' | 'installed';

export interface RotateResult {
  readonly dataKeys: number;
  readonly keyFile: string;
}

/**
 * `amt-scs key rotate` on SQLite: a new master key, every data key re-wrapped under it in one
 * transaction, the key files swapped so that a crash at any point leaves a key that opens the
 * database (src/crypto/key-rotation.ts). Safe while the server runs: the server holds the
 * unwrapped data keys, which do not change, and reads the key file only at start.
 */
export async function rotateSqliteMasterKey(options: RotateOptions): Promise<RotateResult> {
  const { file, masterKeyFile, log } = options;
  const step = async (s: RotationStep): Promise<void> => {
    await options.afterStep?.(s);
  };
  if (!existsSync(file) || statSync(file).size === 0) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `there is no database at ${file}: nothing to rotate`);
  }
  // Opening checks the current key, migrates, and finishes a rotation that died after its commit.
  const opened = await openSqliteStore({ file, masterKeyFile, ...(log === undefined ? {} : { log }) });
  await opened.store.close();
  const oldKey = await readKeyIfPresent(masterKeyFile);
  if (oldKey === undefined) throw new ScsError('SCS_MASTER_KEY_INVALID', `master key file ${masterKeyFile} is gone`);
  // The current key opens the database, so a leftover <key>.next is from a rotation that never committed.
  await removeIfPresent(pendingKeyFile(masterKeyFile));
  await keepRetiredKey(masterKeyFile);
  await step('old-kept');
  const newKey = newMasterKey();
  await writeKeyFile(pendingKeyFile(masterKeyFile), newKey);
  await step('next-written');

  const raw = new Database(file, { timeout: 30_000 });
  const db = new Kysely<StoreDb>({ dialect: new ImmediateSqliteDialect({ database: raw }) });
  let dataKeys: number;
  try {
    const rows = await db.selectFrom('data_keys').selectAll().orderBy('key_id').execute();
    const active = rows.filter((r) => r.status === 'active').at(-1) ?? rows.at(-1);
    if (active === undefined) throw new ScsError('SCS_STORE_FAILED', `database ${file} has no data key`);
    const keys = rows.map((r) => [Number(r.key_id), unwrapDataKey(oldKey, Number(r.key_id), r.wrapped)] as const);
    const box = new SecretBox(keys, Number(active.key_id));
    for (const [, k] of keys) k.fill(0);
    const engine = { name: 'sqlite' as const, lockRows: false };
    dataKeys = await rewrapDataKeys({ root: db, engine, box }, oldKey, newKey, {
      actor: options.actor,
      keyFile: masterKeyFile,
    });
    await box.close();
  } finally {
    await db.destroy();
    if (raw.open) raw.close();
    oldKey.fill(0);
    newKey.fill(0);
  }
  await step('rewrapped');
  await installPendingKey(masterKeyFile);
  await step('installed');
  log?.info({ file: masterKeyFile, dataKeys }, 'master key rotated');
  return { dataKeys, keyFile: masterKeyFile };
}
