import { ScsError } from '../../errors.ts';
import { Secret } from '../../secret.ts';
import { hotFirst, runHot, slot } from '../sql/hot-query.ts';
import { appendAudit, guard, write, type SqlContext } from '../sql/sql-store.ts';
import type { EscrowTable } from './schema.ts';
import { checkUuid, db, nowIso, toDate } from './sql-util.ts';
import type { ActorContext, EscrowPurpose, EscrowRepository, EscrowRow, EscrowStatus } from './types.ts';

/** Associated data of an escrowed password: a blob moved to another device or purpose does not open. */
export function escrowAad(deviceUuid: string, purpose: EscrowPurpose): string {
  return `escrow:${deviceUuid}:${purpose}`;
}

function toRow(r: Omit<EscrowTable, 'secret' | 'id'> & { id: number }): EscrowRow {
  return {
    id: Number(r.id),
    deviceUuid: r.device_uuid,
    purpose: r.purpose,
    username: r.username,
    jobId: r.job_id === null ? null : Number(r.job_id),
    status: r.status,
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
  };
}

/** Opens a stored row (shared with device password reveal). */
export function openEscrow(
  ctx: SqlContext,
  r: Omit<EscrowTable, 'id'> & { id: number },
): EscrowRow & { readonly secret: Secret<string> } {
  const plain = ctx.box.open(r.secret, escrowAad(r.device_uuid, r.purpose));
  return { ...toRow(r), secret: new Secret(plain.toString('utf8')) };
}

const COLUMNS = [
  'id',
  'device_uuid',
  'purpose',
  'username',
  'job_id',
  'status',
  'created_at',
  'updated_at',
] as const satisfies readonly (keyof EscrowTable)[];

/** Device passwords sealed before they are sent (protocol.md §6 step 2: escrow first). */
export class SqlEscrow implements EscrowRepository {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async put(
    entry: {
      readonly deviceUuid: string;
      readonly purpose: EscrowPurpose;
      readonly username?: string;
      readonly secret: Secret<string>;
      readonly jobId?: number;
    },
    context: ActorContext,
  ): Promise<number> {
    checkUuid(entry.deviceUuid);
    const sealed = this.#ctx.box.seal(
      Buffer.from(entry.secret.reveal(), 'utf8'),
      escrowAad(entry.deviceUuid, entry.purpose),
    );
    return write(this.#ctx, async (tx) => {
      const now = nowIso();
      const args = [entry.deviceUuid, entry.purpose, entry.username ?? null, sealed, entry.jobId ?? null, now];
      const r = await hotFirst(tx, 'escrow.put', args, () =>
        db(tx)
          .insertInto('escrow')
          .values({
            device_uuid: slot(0),
            purpose: slot(1),
            username: slot(2),
            secret: slot(3),
            job_id: slot(4),
            status: 'candidate',
            created_at: slot(5),
            updated_at: slot(5),
          })
          .returning('id'),
      );
      if (r === undefined) throw new ScsError('SCS_STORE_FAILED', 'escrow insert returned no id');
      const id = Number(r.id);
      await appendAudit(tx, [
        {
          actor: context.actor,
          action: 'device.escrow',
          detail: { uuid: entry.deviceUuid, purpose: entry.purpose, escrowId: id, job: entry.jobId ?? null },
        },
      ]);
      return id;
    });
  }

  async open(id: number): Promise<EscrowRow & { readonly secret: Secret<string> }> {
    const r = await guard(db(this.#ctx).selectFrom('escrow').selectAll().where('id', '=', id).executeTakeFirst());
    if (r === undefined) {
      throw new ScsError('SCS_STORE_FAILED', `escrow row ${id} does not exist`, { details: { escrowId: id } });
    }
    return openEscrow(this.#ctx, r);
  }

  async list(deviceUuid: string, purpose?: EscrowPurpose): Promise<EscrowRow[]> {
    if (purpose === undefined) {
      const all = db(this.#ctx);
      const res = await guard(
        runHot(this.#ctx, 'escrow.list', [deviceUuid], () =>
          all.selectFrom('escrow').select(COLUMNS).where('device_uuid', '=', slot(0)).orderBy('id'),
        ),
      );
      return res.rows.map(toRow);
    }
    let q = db(this.#ctx).selectFrom('escrow').select(COLUMNS).where('device_uuid', '=', deviceUuid);
    if (purpose !== undefined) q = q.where('purpose', '=', purpose);
    const rows = await guard(q.orderBy('id').execute());
    return rows.map(toRow);
  }

  async setStatus(ids: readonly number[], status: EscrowStatus): Promise<void> {
    if (ids.length === 0) return;
    await write(this.#ctx, async (tx) => {
      // Compiled once per count up to 4 (a job's end settles one or two rows): hot-query.ts.
      if (ids.length <= 4) {
        await runHot(tx, `escrow.setStatus:${ids.length}`, [status, nowIso(), ...ids], () =>
          db(tx)
            .updateTable('escrow')
            .set({ status: slot(0), updated_at: slot(1) })
            .where(
              'id',
              'in',
              ids.map((_, i) => slot(i + 2)),
            ),
        );
        return;
      }
      await db(tx)
        .updateTable('escrow')
        .set({ status, updated_at: nowIso() })
        .where('id', 'in', [...ids])
        .execute();
    });
  }
}
