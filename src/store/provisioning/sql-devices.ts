import { ScsError } from '../../errors.ts';
import type { Pid } from '../../psk/pid.ts';
import { parseDetail } from '../audit-chain.ts';
import { hotFirst, runHot, slot } from '../sql/hot-query.ts';
import { appendAudit, flushAudit, guard, write, type SqlContext } from '../sql/sql-store.ts';
import type { AuditEntry } from '../store.ts';
import type { DevicesTable } from './schema.ts';
import { openEscrow } from './sql-escrow.ts';
import { checkLimit, checkUuid, db, nowIso, toDate, toDateOrNull } from './sql-util.ts';
import {
  DEVICE_STATES,
  type ActorContext,
  type DeviceFilter,
  type DeviceRepository,
  type DeviceRow,
  type DeviceState,
  type ProvisionedDevice,
  type RevealedPassword,
} from './types.ts';

function toRow(r: DevicesTable): DeviceRow {
  return {
    uuid: r.uuid,
    state: r.state,
    address: r.address,
    amtVersion: r.amt_version,
    hostName: r.host_name,
    domainName: r.domain_name,
    profile: r.profile,
    adminUser: r.admin_user,
    adminEscrowId: r.admin_escrow_id === null ? null : Number(r.admin_escrow_id),
    mebxEscrowId: r.mebx_escrow_id === null ? null : Number(r.mebx_escrow_id),
    certPem: r.cert_pem,
    certFingerprint: r.cert_fingerprint,
    certNotAfter: toDateOrNull(r.cert_not_after),
    pid: r.pid as Pid | null,
    lastJobId: r.last_job_id === null ? null : Number(r.last_job_id),
    provisionedAt: toDateOrNull(r.provisioned_at),
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
  };
}

function notFound(uuid: string): ScsError {
  return new ScsError('SCS_DEVICE_NOT_FOUND', `no device with UUID ${uuid}`, { details: { uuid } });
}

/** Devices over the shared SQL core; their history is the audit entries that name them (detail.uuid). */
export class SqlDevices implements DeviceRepository {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async get(uuid: string): Promise<DeviceRow | undefined> {
    const q = db(this.#ctx);
    const r = await guard(
      hotFirst(this.#ctx, 'devices.get', [uuid], () => q.selectFrom('devices').selectAll().where('uuid', '=', slot(0))),
    );
    return r === undefined ? undefined : toRow(r);
  }

  async list(filter: DeviceFilter = {}): Promise<DeviceRow[]> {
    const limit = checkLimit(filter.limit, 1000, 10_000);
    let q = db(this.#ctx).selectFrom('devices').selectAll();
    if (filter.state !== undefined) q = q.where('state', '=', filter.state);
    if (filter.afterUuid !== undefined) q = q.where('uuid', '>', filter.afterUuid);
    const rows = await guard(q.orderBy('uuid').limit(limit).execute());
    return rows.map(toRow);
  }

  async countByState(): Promise<Record<DeviceState, number>> {
    const rows = await guard(
      db(this.#ctx)
        .selectFrom('devices')
        .select((eb) => ['state', eb.fn.countAll().as('n')])
        .groupBy('state')
        .execute(),
    );
    const out = Object.fromEntries(DEVICE_STATES.map((s) => [s, 0])) as Record<DeviceState, number>;
    for (const r of rows) out[r.state] = Number(r.n);
    return out;
  }

  async noteJob(
    uuid: string,
    facts: { readonly address: string; readonly profile: string; readonly jobId: number },
    context: ActorContext,
  ): Promise<void> {
    checkUuid(uuid);
    await write(this.#ctx, async (tx) => {
      const now = nowIso();
      // Compiled once (hot-query.ts): slots 0-4 are uuid, address, profile, job id, now.
      await runHot(tx, 'devices.noteJob', [uuid, facts.address, facts.profile, facts.jobId, now], () =>
        db(tx)
          .insertInto('devices')
          .values({
            uuid: slot(0),
            state: 'provisioning',
            address: slot(1),
            amt_version: null,
            host_name: null,
            domain_name: null,
            profile: slot(2),
            admin_user: null,
            admin_escrow_id: null,
            mebx_escrow_id: null,
            cert_pem: null,
            cert_fingerprint: null,
            cert_not_after: null,
            pid: null,
            last_job_id: slot(3),
            provisioned_at: null,
            created_at: slot(4),
            updated_at: slot(4),
          })
          // A known device keeps what it had (credentials, certificate) until the new job finishes.
          .onConflict((oc) =>
            oc.column('uuid').doUpdateSet({
              state: 'provisioning',
              address: slot(1),
              last_job_id: slot(3),
              updated_at: slot(4),
            }),
          ),
      );
      await appendAudit(tx, [
        {
          actor: context.actor,
          action: 'device.provisioning',
          detail: { uuid, job: facts.jobId, address: facts.address, profile: facts.profile },
        },
      ]);
    });
  }

  async markProvisioned(uuid: string, f: ProvisionedDevice, context: ActorContext): Promise<void> {
    await write(this.#ctx, async (tx) => {
      const now = nowIso();
      const set = {
        address: f.address,
        amt_version: f.amtVersion,
        host_name: f.hostName,
        domain_name: f.domainName,
        profile: f.profile,
        admin_user: f.adminUser,
        admin_escrow_id: f.adminEscrowId,
        mebx_escrow_id: f.mebxEscrowId,
        cert_pem: f.certPem,
        cert_fingerprint: f.certFingerprint,
        cert_not_after: f.certNotAfter === null ? null : f.certNotAfter.toISOString(),
        pid: f.pid,
        last_job_id: f.jobId,
        provisioned_at: now,
        updated_at: now,
      };
      const columns = Object.keys(set);
      // Compiled once (hot-query.ts): the columns above in order, then the UUID.
      const res = await runHot(tx, 'devices.markProvisioned', [...Object.values(set), uuid], () =>
        db(tx)
          .updateTable('devices')
          .set({ state: 'provisioned', ...Object.fromEntries(columns.map((c, i) => [c, slot(i)])) })
          .where('uuid', '=', slot(columns.length)),
      );
      if (Number(res.numAffectedRows) !== 1) throw notFound(uuid);
      await appendAudit(tx, [
        {
          actor: context.actor,
          action: 'device.provisioned',
          ...(f.pid === null ? {} : { pids: [f.pid] }),
          detail: {
            uuid,
            job: f.jobId,
            address: f.address,
            amtVersion: f.amtVersion,
            hostName: f.hostName,
            domainName: f.domainName,
            profile: f.profile,
            adminUser: f.adminUser,
            certFingerprint: f.certFingerprint,
          },
        },
      ]);
    });
  }

  async markState(
    uuid: string,
    state: 'failed' | 'unverified',
    facts: { readonly jobId: number; readonly code: string },
    context: ActorContext,
  ): Promise<void> {
    await write(this.#ctx, async (tx) => {
      const res = await db(tx)
        .updateTable('devices')
        .set({ state, last_job_id: facts.jobId, updated_at: nowIso() })
        .where('uuid', '=', uuid)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw notFound(uuid);
      await appendAudit(tx, [
        { actor: context.actor, action: `device.${state}`, detail: { uuid, job: facts.jobId, code: facts.code } },
      ]);
    });
  }

  async history(uuid: string, limit = 100): Promise<AuditEntry[]> {
    checkUuid(uuid);
    const n = checkLimit(limit, 100, 10_000);
    await flushAudit(this.#ctx);
    // Entries name the device in detail.uuid; the UUID text cannot contain LIKE wildcards.
    const rows = await guard(
      db(this.#ctx)
        .selectFrom('audit_log')
        .selectAll()
        .where('detail', 'like', `%"uuid":"${uuid}"%`)
        .orderBy('seq', 'desc')
        .limit(n)
        .execute(),
    );
    return rows.map((r) => ({
      seq: Number(r.seq),
      at: toDate(r.at),
      actor: r.actor,
      action: r.action,
      pids: r.pids === '' ? [] : (r.pids.split(',') as Pid[]),
      detail: parseDetail(r.detail) ?? {},
      hash: r.hash,
    }));
  }

  async revealAdminPassword(
    uuid: string,
    context: ActorContext & { readonly reason?: string },
  ): Promise<RevealedPassword> {
    return write(this.#ctx, async (tx) => {
      const device = await db(tx).selectFrom('devices').selectAll().where('uuid', '=', uuid).executeTakeFirst();
      if (device === undefined) throw notFound(uuid);
      // The confirmed password, else the newest candidate (a device left unverified may use it).
      const row =
        device.admin_escrow_id !== null
          ? await db(tx).selectFrom('escrow').selectAll().where('id', '=', device.admin_escrow_id).executeTakeFirst()
          : await db(tx)
              .selectFrom('escrow')
              .selectAll()
              .where('device_uuid', '=', uuid)
              .where('purpose', '=', 'admin')
              .orderBy('id', 'desc')
              .limit(1)
              .executeTakeFirst();
      if (row === undefined) {
        throw new ScsError('SCS_DEVICE_NOT_FOUND', `device ${uuid} has no escrowed admin password`, {
          details: { uuid },
        });
      }
      const opened = openEscrow(tx, row);
      await appendAudit(tx, [
        {
          actor: context.actor,
          action: 'device.reveal_password',
          detail: { uuid, escrowId: opened.id, status: opened.status, reason: context.reason ?? null },
        },
      ]);
      return {
        uuid,
        username: opened.username ?? device.admin_user ?? 'admin',
        password: opened.secret,
        escrowId: opened.id,
      };
    });
  }
}
