import { ScsError } from '../../errors.ts';
import { nowIso, toDate, type SqlContext } from '../sql/sql-store.ts';
import type { Db, ProvisioningDb } from './schema.ts';

/** One per builder: `withTables` makes a new Kysely instance, and the hot path asks ~15 times a job. */
const withProvisioning = new WeakMap<SqlContext['q'], Db>();

/** The query builder of `ctx` (the store or its open transaction) with the provisioning tables. */
export function db(ctx: SqlContext): Db {
  let q = withProvisioning.get(ctx.q);
  if (q === undefined) withProvisioning.set(ctx.q, (q = ctx.q.withTables<ProvisioningDb>()));
  return q;
}

// The store's clock and date reading, shared with the PSK repositories (one millisecond cache).
export { nowIso, toDate };

export function toDateOrNull(v: string | Date | null): Date | null {
  return v === null ? null : toDate(v);
}

export function checkLimit(value: number | undefined, fallback: number, max: number, what = 'limit'): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `${what} must be a whole number 1..${max}, got ${value}`);
  }
  return value;
}

/** Device UUID text form (protocol.md §1c): 36 characters, lowercase hex and dashes. */
export function checkUuid(uuid: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid)) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `"${uuid}" is not a device UUID (8-4-4-4-12 lowercase hex digits)`);
  }
  return uuid;
}
