import type { Kysely } from 'kysely';
import { generateDataKey, SecretBox, unwrapDataKey, wrapDataKey } from '../../crypto/envelope.ts';
import { ScsError } from '../../errors.ts';
import type { StoreDb } from './schema.ts';

/**
 * Every data key unwrapped with the master key, the newest active one sealing new secrets. A
 * wrong master key fails here (SCS_MASTER_KEY_MISMATCH from unwrapDataKey), before anything is
 * written. Portable SQL: both adapters open their store through it.
 */
export async function unwrapAll(db: Kysely<StoreDb>, masterKey: Buffer): Promise<SecretBox> {
  const rows = await db.selectFrom('data_keys').selectAll().orderBy('key_id').execute();
  const keys = rows.map((r) => [Number(r.key_id), unwrapDataKey(masterKey, Number(r.key_id), r.wrapped)] as const);
  const active = rows.filter((r) => r.status === 'active').at(-1);
  if (active === undefined) throw new ScsError('SCS_STORE_FAILED', 'the database has no active data key');
  const box = new SecretBox(keys, Number(active.key_id));
  for (const [, k] of keys) k.fill(0);
  return box;
}

/** Creates data key 1 inside the caller's (migration) transaction when the database has none. */
export async function ensureDataKey(trx: Kysely<StoreDb>, masterKey: Buffer, where: string): Promise<void> {
  const keys = await trx.selectFrom('data_keys').select('key_id').execute();
  if (keys.length > 0) return;
  const used = await trx.selectFrom('psks').select('id').limit(1).executeTakeFirst();
  if (used !== undefined) {
    throw new ScsError('SCS_MASTER_KEY_MISMATCH', `database ${where} holds PSKs but no data key`);
  }
  const dek = generateDataKey();
  try {
    await trx
      .insertInto('data_keys')
      .values({
        key_id: 1,
        wrapped: wrapDataKey(masterKey, 1, dek),
        created_at: new Date().toISOString(),
        status: 'active',
      })
      .execute();
  } finally {
    dek.fill(0);
  }
}
