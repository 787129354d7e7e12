import { sql, type Kysely } from 'kysely';
import { ScsError } from '../../errors.ts';
import type { StoreDb } from './schema.ts';

/** One schema step: plain DDL statements in the adapter's dialect, applied in one transaction. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

export interface MigrationResult {
  readonly from: number;
  readonly to: number;
}

/** The version recorded in `schema_migrations`, or 0 for a database without the table. */
export async function schemaVersion(db: Kysely<StoreDb>): Promise<number> {
  try {
    const row = await db
      .selectFrom('schema_migrations')
      .select((eb) => eb.fn.max('version').as('v'))
      .executeTakeFirst();
    return Number(row?.v ?? 0);
  } catch (cause) {
    if (/no such table|does not exist/i.test(cause instanceof Error ? cause.message : '')) return 0;
    throw new ScsError('SCS_STORE_FAILED', 'cannot read the schema version', { cause });
  }
}

export function assertNotNewer(dbVersion: number, migrations: readonly Migration[]): void {
  const known = latestVersion(migrations);
  if (dbVersion > known) {
    throw new ScsError(
      'SCS_STORE_SCHEMA_NEWER',
      `the database has schema version ${dbVersion}; this amt-scs knows up to ${known}: upgrade amt-scs before using it`,
      { details: { dbVersion, knownVersion: known } },
    );
  }
}

/**
 * Applies the missing migrations in order, inside the caller's write transaction (which must
 * exclude other writers, so two servers starting at once do not both migrate), recording each
 * in `schema_migrations`.
 */
export async function migrate(trx: Kysely<StoreDb>, migrations: readonly Migration[]): Promise<MigrationResult> {
  await sql`create table if not exists schema_migrations (
    version integer primary key,
    name text not null,
    applied_at text not null
  )`.execute(trx);
  const from = await schemaVersion(trx);
  assertNotNewer(from, migrations);
  const pending = [...migrations].filter((m) => m.version > from).sort((a, b) => a.version - b.version);
  for (const m of pending) {
    for (const statement of m.statements) await sql.raw(statement).execute(trx);
    await trx
      .insertInto('schema_migrations')
      .values({ version: m.version, name: m.name, applied_at: new Date().toISOString() })
      .execute();
  }
  return { from, to: Math.max(from, latestVersion(migrations)) };
}

function latestVersion(migrations: readonly Migration[]): number {
  return migrations.reduce((max, m) => Math.max(max, m.version), 0);
}
