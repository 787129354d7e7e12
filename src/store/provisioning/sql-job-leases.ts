import { guard, type SqlContext } from '../sql/sql-store.ts';
import type { JobsTable } from './schema.ts';
import { db, nowIso } from './sql-util.ts';
import type { ClaimOptions, JobState } from './types.ts';

/**
 * Job leases for several nodes on one database (docs/operations.md, "Leases"). A lease is
 * (lease_owner, lease_until) on the job row; a node renews its own every few seconds; a job
 * whose lease has expired (its node died) is claimed by another node. Each function is one or
 * two single statements: no audit-head lock, so claims and heartbeats never wait on provisioning
 * writes. Timestamps are ISO-8601 UTC text, which compares as time on both engines.
 */

type StoredJob = Omit<JobsTable, 'id'> & { id: number };

const UNFINISHED: readonly JobState[] = ['queued', 'running'];
/** Ids per IN (...) list. */
const IN_CHUNK = 500;

export async function claimJobs(ctx: SqlContext, options: ClaimOptions): Promise<StoredJob[]> {
  const q = db(ctx);
  const now = nowIso();
  const until = options.until.toISOString();
  if (options.limit !== undefined && options.limit < 1) return [];
  let pick = q.selectFrom('jobs').select('id').where('state', 'in', UNFINISHED);
  if (options.ignoreLeases !== true) {
    pick = pick.where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]));
  }
  pick = pick.orderBy('id');
  if (options.limit !== undefined) pick = pick.limit(options.limit);
  // Two nodes claiming at once take different jobs instead of queueing on the same rows; a row
  // locked for FOR UPDATE is re-checked against the WHERE on its newest version, so a lease
  // renewed meanwhile is not taken.
  if (ctx.engine.lockRows) pick = pick.forUpdate().skipLocked();
  const rows = await guard(
    q
      .updateTable('jobs')
      .set({ lease_owner: options.owner, lease_until: until })
      .where('id', 'in', pick)
      .where('state', 'in', UNFINISHED)
      .returningAll()
      .execute(),
  );
  return rows.map((r) => ({ ...r, id: Number(r.id) })).sort((a, b) => a.id - b.id);
}

export async function renewJobLeases(
  ctx: SqlContext,
  owner: string,
  ids: readonly number[],
  until: Date,
): Promise<number[]> {
  const q = db(ctx);
  const held: number[] = [];
  for (let i = 0; i < ids.length; i += IN_CHUNK) {
    const part = ids.slice(i, i + IN_CHUNK);
    let pick = q
      .selectFrom('jobs')
      .select('id')
      .where('id', 'in', part)
      .where('lease_owner', '=', owner)
      .where('state', 'in', UNFINISHED);
    // A row this node's own provisioning write holds right now is renewed at the next beat.
    if (ctx.engine.lockRows) pick = pick.forUpdate().skipLocked();
    await guard(
      q
        .updateTable('jobs')
        .set({ lease_until: until.toISOString() })
        .where('id', 'in', pick)
        .where('lease_owner', '=', owner)
        .execute(),
    );
    const still = await guard(
      q
        .selectFrom('jobs')
        .select('id')
        .where('id', 'in', part)
        .where('lease_owner', '=', owner)
        .where('state', 'in', UNFINISHED)
        .execute(),
    );
    for (const r of still) held.push(Number(r.id));
  }
  return held;
}

export async function releaseJobLeases(ctx: SqlContext, owner: string, ids: readonly number[]): Promise<void> {
  const q = db(ctx);
  for (let i = 0; i < ids.length; i += IN_CHUNK) {
    await guard(
      q
        .updateTable('jobs')
        .set({ lease_owner: null, lease_until: null })
        .where('id', 'in', ids.slice(i, i + IN_CHUNK))
        .where('lease_owner', '=', owner)
        .where('state', 'in', UNFINISHED)
        .execute(),
    );
  }
}
