import { sql } from 'kysely';
import type { Pid } from '../../psk/pid.ts';
import type { Pps } from '../../psk/pps.ts';
import type { Secret } from '../../secret.ts';
import { hotFirst, runHot, slot } from '../sql/hot-query.ts';
import { appendAudit, guard, write, type SqlContext } from '../sql/sql-store.ts';
import type { Store } from '../store.ts';
import { db, nowIso } from './sql-util.ts';
import type { Db } from './schema.ts';
import type { ActorContext, PskBindingRepository, RenewalPsk } from './types.ts';

/**
 * Renewal candidates: only `available` (an `exported` PSK may already sit on a USB key or in a
 * device). A module function: a closure per pick would cost a keepNames
 * defineProperty under tsx.
 */
function availableRenewals(q: Db) {
  return q.selectFrom('psks').select(['pid', 'batch']).where('psks.state', '=', 'available');
}

/** PSKs seen from provisioning: renewal PSKs (§6 step 7) and the device each one is bound to. */
export class SqlPskBindings implements PskBindingRepository {
  readonly #ctx: SqlContext;
  /** The Store bound to a transaction context (psks.transition and reveal join that transaction). */
  readonly #txStore: (ctx: SqlContext) => Store;

  constructor(ctx: SqlContext, txStore: (ctx: SqlContext) => Store) {
    this.#ctx = ctx;
    this.#txStore = txStore;
  }

  async takeRenewal(
    request: { readonly deviceUuid: string; readonly preferBatch: string; readonly profile: string | null },
    context: ActorContext,
  ): Promise<RenewalPsk | undefined> {
    const picked = await write(this.#ctx, async (tx) => {
      const q = db(tx);
      // SQLite without statistics walks the batch index here: every row of the batch in id order,
      // one table lookup each, until an available one, so a pick cost grows with the batch's
      // exported, in-use and consumed PSKs (1.5 ms at 1,000 exported ahead; a batch of a million
      // provisioned devices would cost seconds). Unary + takes batch off its index
      // (sqlite.org/optoverview.html): the state index walks available rows in id order and the
      // first of the batch is the answer, found at once unless another batch's available rows
      // come first (docs/performance.md). PostgreSQL has statistics and no unary + on text.
      const batchColumn = tx.engine.name === 'sqlite' ? sql<string>`+batch` : sql<string>`batch`;
      let row = await hotFirst(tx, 'psks.renewalInBatch', [request.preferBatch], () =>
        availableRenewals(q).where(batchColumn, '=', slot(0)).orderBy('id').limit(1),
      );
      if (row === undefined) {
        row = await availableRenewals(q)
          .where((eb) =>
            request.profile === null
              ? eb('batch', 'in', eb.selectFrom('batches').select('name').where('profile', 'is', null))
              : eb('batch', 'in', eb.selectFrom('batches').select('name').where('profile', '=', request.profile)),
          )
          .orderBy('id')
          .limit(1)
          .executeTakeFirst();
      }
      if (row === undefined) return undefined;
      const store = this.#txStore(tx);
      await store.psks.transition({
        pids: [row.pid as Pid],
        from: ['available'],
        to: 'in_use',
        actor: context.actor,
        reason: 'renewal',
        deviceUuid: request.deviceUuid,
      });
      const pps: Secret<Pps> = await store.psks.reveal(row.pid as Pid, { actor: context.actor, purpose: 'renewal' });
      return { pid: row.pid as Pid, pps, batch: row.batch };
    });
    return picked;
  }

  async bind(pid: Pid, deviceUuid: string | null, context: ActorContext): Promise<void> {
    await write(this.#ctx, async (tx) => {
      await db(tx)
        .updateTable('psks')
        .set({ device_uuid: deviceUuid, updated_at: nowIso() })
        .where('pid', '=', pid)
        .execute();
      await appendAudit(tx, [{ actor: context.actor, action: 'psk.bind', pids: [pid], detail: { uuid: deviceUuid } }]);
    });
  }

  async boundTo(deviceUuid: string): Promise<Pid[]> {
    const q = db(this.#ctx);
    const { rows } = await guard(
      runHot(this.#ctx, 'psks.boundTo', [deviceUuid], () =>
        q
          .selectFrom('psks')
          .select('pid')
          .where('device_uuid', '=', slot(0))
          .where('state', '=', 'in_use')
          .orderBy('id'),
      ),
    );
    return rows.map((r) => r.pid as Pid);
  }
}
