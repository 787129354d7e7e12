import { ScsError } from '../../errors.ts';
import type { SqlContext } from '../sql/sql-store.ts';
import type { Db, ProvisioningDb } from './schema.ts';

/** The query builder of `ctx` (the store or its open transaction) with the provisioning tables. */
export function db(ctx: SqlContext): Db {
  return ctx.q.withTables<ProvisioningDb>();
}

let isoMs = -1;
let isoText = '';

/**
 * The current time as stored (ISO-8601 UTC, milliseconds). The text of the last millisecond
 * is kept: hundreds of jobs write in the same millisecond, and formatting a Date was a
 * visible part of an audit append.
 */
export function nowIso(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoText = new Date(ms).toISOString();
    isoMs = ms;
  }
  return isoText;
}

export function toDate(v: string | Date): Date {
  return v instanceof Date ? v : new Date(v);
}

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
