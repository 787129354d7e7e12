import type { Kysely } from 'kysely';
import { unwrapDataKey, wrapDataKey } from '../../crypto/envelope.ts';
import { appendAudit, type SqlContext } from './sql-store.ts';
import type { StoreDb } from './schema.ts';

/**
 * Step 2 of a master key rotation (src/crypto/key-rotation.ts): in one transaction, every data
 * key is unwrapped with the old master key (a wrong old key fails here, before anything is
 * written) and wrapped again under the new one, and the rotation is audited. Secrets sealed
 * under the data keys are not touched: rotation costs one row per data key, not one per PSK.
 * Portable SQL: any adapter that hands over its Kysely instance and engine can call it.
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
        detail: { dataKeys: keys.length, keyFile: audit.keyFile },
      },
    ]);
    return keys.length;
  });
}
