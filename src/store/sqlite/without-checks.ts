import type Database from 'better-sqlite3';

/**
 * Runs `fn` (synchronous: better-sqlite3) with the connection's CHECK constraints off, and turns
 * them back on even if it throws, so no other statement ever runs without them. For bulk writes
 * to psks whose values were checked before: SQLite evaluates `state in (...)` by building an
 * ephemeral table per row written (~1.3 s a million; docs/psk-database.md, "Bulk import").
 * Setting the pragma expires the connection's prepared statements, which SQLite re-prepares on
 * their next run.
 */
export function withoutCheckConstraints<T>(raw: Database.Database, fn: () => T): T {
  raw.pragma('ignore_check_constraints = on');
  try {
    return fn();
  } finally {
    raw.pragma('ignore_check_constraints = off');
  }
}
