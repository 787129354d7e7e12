import { ScsError } from '../../errors.ts';
import type { Pid } from '../../psk/pid.ts';
import { hotFirst, runHot, slot } from '../sql/hot-query.ts';
import { appendAudit, guard, write, type SqlContext } from '../sql/sql-store.ts';
import type { Db, JobsTable } from './schema.ts';
import { claimJobs, releaseJobLeases, renewJobLeases } from './sql-job-leases.ts';
import { checkLimit, checkUuid, db, nowIso, toDate, toDateOrNull } from './sql-util.ts';
import {
  JOB_STATES,
  type ActorContext,
  type ClaimOptions,
  type JobAudit,
  type JobData,
  type JobFilter,
  type JobFinish,
  type JobRepository,
  type JobRow,
  type JobState,
  type JobUpdate,
  type NewJob,
} from './types.ts';

type StoredJob = Omit<JobsTable, 'id'> & { id: number };

function parseData(text: string): JobData {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? v : {};
  } catch {
    return {};
  }
}

function toRow(r: StoredJob): JobRow {
  return {
    id: Number(r.id),
    deviceUuid: r.device_uuid,
    pid: r.pid as Pid,
    address: r.address,
    profile: r.profile,
    state: r.state,
    step: r.step,
    attempts: Number(r.attempts),
    errorCode: r.error_code,
    errorMessage: r.error_message,
    leaseOwner: r.lease_owner,
    leaseUntil: toDateOrNull(r.lease_until),
    data: parseData(r.data),
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
    finishedAt: toDateOrNull(r.finished_at),
  };
}

const UNFINISHED: readonly JobState[] = ['queued', 'running'];

/**
 * The hot UPDATE of jobs.update/progress: `columns` set from slots 0..n-1, the job id in slot n,
 * only while unfinished; `fenced`: only while the lease (slot n+1) is the writer's or nobody's.
 * A module function: a closure made per call would cost a keepNames defineProperty under tsx.
 */
function updateJob(q: Db, columns: readonly string[], fenced: boolean) {
  let upd = q
    .updateTable('jobs')
    .set(Object.fromEntries(columns.map((c, i) => [c, slot(i)])) as never)
    .where('id', '=', slot(columns.length))
    .where('state', 'in', UNFINISHED);
  if (fenced) {
    const o = slot(columns.length + 1);
    upd = upd.where((eb) => eb.or([eb('lease_owner', '=', o), eb('lease_owner', 'is', null)]));
  }
  return upd;
}

/** Provisioning jobs: durable, one unfinished job per device (unique partial index). */
export class SqlJobs implements JobRepository {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async create(job: NewJob, context: ActorContext): Promise<JobRow | undefined> {
    checkUuid(job.deviceUuid);
    return write(this.#ctx, async (tx) => {
      const q = db(tx);
      const active = await hotFirst(tx, 'jobs.activeId', [job.deviceUuid], () =>
        q.selectFrom('jobs').select('id').where('device_uuid', '=', slot(0)).where('state', 'in', UNFINISHED),
      );
      if (active !== undefined) return undefined;
      const now = nowIso();
      const row = {
        device_uuid: job.deviceUuid,
        pid: job.pid,
        address: job.address,
        profile: job.profile,
        state: 'queued' as const,
        step: null,
        attempts: 0,
        error_code: null,
        error_message: null,
        lease_owner: job.lease?.owner ?? null,
        lease_until: job.lease?.until.toISOString() ?? null,
        data: JSON.stringify(job.data ?? {}),
        created_at: now,
        updated_at: now,
        finished_at: null,
      };
      const values = Object.values(row);
      const inserted = await hotFirst(tx, 'jobs.insert', values, () =>
        q
          .insertInto('jobs')
          .values(Object.fromEntries(Object.keys(row).map((k, i) => [k, slot(i)])) as never)
          .returning('id'),
      );
      if (inserted === undefined) throw new ScsError('SCS_STORE_FAILED', 'job insert returned no id');
      const id = Number(inserted.id);
      await appendAudit(tx, [
        {
          actor: context.actor,
          action: 'job.created',
          pids: [job.pid],
          detail: { job: id, uuid: job.deviceUuid, address: job.address, profile: job.profile },
        },
      ]);
      return toRow({ ...row, id });
    });
  }

  async get(id: number): Promise<JobRow | undefined> {
    const r = await guard(db(this.#ctx).selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst());
    return r === undefined ? undefined : toRow(r);
  }

  async list(filter: JobFilter = {}): Promise<JobRow[]> {
    const limit = checkLimit(filter.limit, 1000, 10_000);
    const order = filter.order ?? 'asc';
    let q = db(this.#ctx).selectFrom('jobs').selectAll();
    if (filter.state !== undefined) {
      const states: readonly JobState[] = typeof filter.state === 'string' ? [filter.state] : filter.state;
      for (const s of states) {
        if (!(JOB_STATES as readonly string[]).includes(s)) {
          throw new ScsError('SCS_ARGUMENT_INVALID', `job state "${s}" is not one of ${JOB_STATES.join(', ')}`);
        }
      }
      q = q.where('state', 'in', states);
    }
    if (filter.deviceUuid !== undefined) q = q.where('device_uuid', '=', filter.deviceUuid);
    if (filter.afterId !== undefined) q = q.where('id', order === 'asc' ? '>' : '<', filter.afterId);
    const rows = await guard(q.orderBy('id', order).limit(limit).execute());
    return rows.map(toRow);
  }

  async unfinished(): Promise<JobRow[]> {
    const rows = await guard(
      db(this.#ctx).selectFrom('jobs').selectAll().where('state', 'in', UNFINISHED).orderBy('id').execute(),
    );
    return rows.map(toRow);
  }

  async activeFor(deviceUuid: string): Promise<JobRow | undefined> {
    const q = db(this.#ctx);
    const r = await guard(
      hotFirst(this.#ctx, 'jobs.activeFor', [deviceUuid], () =>
        q.selectFrom('jobs').selectAll().where('device_uuid', '=', slot(0)).where('state', 'in', UNFINISHED),
      ),
    );
    return r === undefined ? undefined : toRow(r);
  }

  async update(id: number, change: JobUpdate, audit: JobAudit | undefined, context: ActorContext): Promise<JobRow> {
    const row = await this.#update(id, change, audit, context, true);
    if (row === undefined) throw new ScsError('SCS_STORE_FAILED', `job ${id} update returned no row`);
    return toRow(row);
  }

  async progress(id: number, change: JobUpdate, audit: JobAudit | undefined, context: ActorContext): Promise<void> {
    await this.#update(id, change, audit, context, false);
  }

  /**
   * update() and progress(). `wantRow`: RETURNING every column, for update()'s JobRow. Without
   * it the statement returns the device only when an audit entry needs it, and nothing
   * otherwise (the rows changed say whether it landed): a row of 16 columns and its JobRow
   * (the data JSON parsed, four dates) cost more than the UPDATE itself, and the runner's
   * progress writes, three per job, read nothing back.
   */
  async #update(
    id: number,
    change: JobUpdate,
    audit: JobAudit | undefined,
    context: ActorContext,
    wantRow: boolean,
  ): Promise<StoredJob | undefined> {
    return write(this.#ctx, async (tx) => {
      const q = db(tx);
      const set: Partial<StoredJob> = { updated_at: nowIso() };
      if (change.state !== undefined) set.state = change.state;
      if (change.step !== undefined) set.step = change.step;
      if (change.data !== undefined) set.data = JSON.stringify(change.data);
      if (change.attempts !== undefined) set.attempts = change.attempts;
      if (change.lease !== undefined) {
        set.lease_owner = change.lease.owner;
        set.lease_until = change.lease.until.toISOString();
      }
      // One statement on the hot path (a progress write per step per job).
      // Compiled once per shape (the columns set, whether a lease fences it, what it returns):
      // hot-query.ts. Fencing: a write that renews a lease only lands while the writer holds it
      // (or nobody does), so a node that stalled past its lease cannot take a job back from the
      // node that claimed it (docs/operations.md, "Leases").
      const owner = change.lease?.owner;
      const columns = Object.keys(set);
      const args: unknown[] = Object.values(set);
      args.push(id);
      if (owner !== undefined) args.push(owner);
      const shape = `${columns.join(',')}:${owner !== undefined}`;
      let row: StoredJob | undefined;
      let uuid: string | undefined;
      let landed: boolean;
      if (wantRow) {
        row = await hotFirst(tx, `jobs.update:${shape}`, args, () =>
          updateJob(q, columns, owner !== undefined).returningAll(),
        );
        uuid = row?.device_uuid;
        landed = row !== undefined;
      } else if (audit !== undefined) {
        uuid = (
          await hotFirst(tx, `jobs.progress:${shape}:uuid`, args, () =>
            updateJob(q, columns, owner !== undefined).returning('device_uuid'),
          )
        )?.device_uuid;
        landed = uuid !== undefined;
      } else {
        const r = await runHot(tx, `jobs.progress:${shape}`, args, () => updateJob(q, columns, owner !== undefined));
        landed = Number(r.numAffectedRows ?? 0) > 0;
      }
      if (!landed) {
        const current = await q
          .selectFrom('jobs')
          .select(['state', 'lease_owner'])
          .where('id', '=', id)
          .executeTakeFirst();
        if (current === undefined) throw new ScsError('SCS_STORE_FAILED', `job ${id} does not exist`);
        if (UNFINISHED.includes(current.state)) {
          throw new ScsError('SCS_STORE_FAILED', `job ${id} is leased to another node`, {
            details: { job: id, leaseLost: true },
          });
        }
        throw new ScsError('SCS_STORE_FAILED', `job ${id} is ${current.state}; a finished job does not change`, {
          details: { job: id, state: current.state },
        });
      }
      if (audit !== undefined) {
        await appendAudit(tx, [
          {
            actor: context.actor,
            action: audit.action,
            detail: { job: id, uuid: uuid ?? null, ...audit.detail },
          },
        ]);
      }
      return row;
    });
  }

  async finish(id: number, outcome: JobFinish, context: ActorContext): Promise<JobRow> {
    return write(this.#ctx, async (tx) => {
      const q = db(tx);
      const now = nowIso();
      const set: Partial<StoredJob> = {
        state: outcome.state,
        updated_at: now,
        finished_at: now,
        lease_owner: null,
        lease_until: null,
      };
      if (outcome.data !== undefined) set.data = JSON.stringify(outcome.data);
      if (outcome.step !== undefined) set.step = outcome.step;
      if (outcome.state === 'failed') {
        set.error_code = outcome.code;
        // Bounded, and never a secret: messages are built from codes, names and PIDs only.
        set.error_message = outcome.message.slice(0, 1000);
      }
      // One statement: only an unfinished job finishes, and RETURNING gives the row (pid, device,
      // attempts and step are not changed here) instead of reading it first.
      const columns = Object.keys(set);
      const current = await hotFirst(tx, `jobs.finish:${columns.join(',')}`, [...Object.values(set), id], () =>
        q
          .updateTable('jobs')
          .set(Object.fromEntries(columns.map((c, i) => [c, slot(i)])) as never)
          .where('id', '=', slot(columns.length))
          .where('state', 'in', UNFINISHED)
          .returningAll(),
      );
      if (current === undefined) {
        const found = await q.selectFrom('jobs').select('state').where('id', '=', id).executeTakeFirst();
        if (found === undefined) throw new ScsError('SCS_STORE_FAILED', `job ${id} does not exist`);
        throw new ScsError('SCS_STORE_FAILED', `job ${id} is already ${found.state}`, {
          details: { job: id, state: found.state },
        });
      }
      await appendAudit(tx, [
        {
          actor: context.actor,
          action: `job.${outcome.state}`,
          pids: [current.pid as Pid],
          detail: {
            job: id,
            uuid: current.device_uuid,
            attempts: Number(current.attempts),
            ...(outcome.state === 'failed' ? { code: outcome.code, step: current.step } : {}),
          },
        },
      ]);
      return toRow(current);
    });
  }

  async countByState(): Promise<Record<JobState, number>> {
    const rows = await guard(
      db(this.#ctx)
        .selectFrom('jobs')
        .select((eb) => ['state', eb.fn.countAll().as('n')])
        .groupBy('state')
        .execute(),
    );
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const r of rows) out[r.state] = Number(r.n);
    return out;
  }

  async claim(options: ClaimOptions): Promise<JobRow[]> {
    return (await claimJobs(this.#ctx, options)).map(toRow);
  }

  renewLeases(owner: string, ids: readonly number[], until: Date): Promise<number[]> {
    return renewJobLeases(this.#ctx, owner, ids, until);
  }

  releaseLeases(owner: string, ids: readonly number[]): Promise<void> {
    return releaseJobLeases(this.#ctx, owner, ids);
  }
}
