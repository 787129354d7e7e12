import type { CaMaterial } from '../../crypto/ca.ts';
import { Secret } from '../../secret.ts';
import { appendAudit, guard, write, type SqlContext } from '../sql/sql-store.ts';
import { db, nowIso } from './sql-util.ts';
import type { ActorContext, CaRepository } from './types.ts';

const KEY_AAD = 'ca:key';

/** The SCS CA (one row): certificate in clear, PKCS#8 private key sealed with the store's SecretBox. */
export class SqlCa implements CaRepository {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async get(): Promise<CaMaterial | undefined> {
    const r = await guard(db(this.#ctx).selectFrom('ca').selectAll().where('id', '=', 1).executeTakeFirst());
    if (r === undefined) return undefined;
    return { certPem: r.cert_pem, keyPkcs8: new Secret(this.#ctx.box.open(r.key, KEY_AAD)) };
  }

  async create(
    material: CaMaterial,
    context: ActorContext,
  ): Promise<{ readonly material: CaMaterial; readonly created: boolean }> {
    const sealed = this.#ctx.box.seal(material.keyPkcs8.reveal(), KEY_AAD);
    const created = await write(this.#ctx, async (tx) => {
      const q = db(tx);
      // ON CONFLICT: two nodes starting together on one PostgreSQL database both find no CA;
      // the second insert becomes a no-op and that node uses the first node's CA.
      const inserted = await q
        .insertInto('ca')
        .values({ id: 1, cert_pem: material.certPem, key: sealed, created_at: nowIso() })
        .onConflict((oc) => oc.column('id').doNothing())
        .returning('id')
        .executeTakeFirst();
      if (inserted === undefined) return false;
      await appendAudit(tx, [{ actor: context.actor, action: 'ca.create', detail: { keyAlgorithm: 'RSA-2048' } }]);
      return true;
    });
    if (created) return { material, created };
    const stored = await this.get();
    if (stored === undefined) throw new Error('unreachable: the CA row vanished');
    return { material: stored, created: false };
  }
}
