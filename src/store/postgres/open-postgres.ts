import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { loadMasterKey } from '../../crypto/masterKey.ts';
import { isScsError, ScsError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { checkMasterKey, ensureDataKey, openDataKeys } from '../sql/data-keys.ts';
import { assertNotNewer, migrate, schemaVersion, type Migration } from '../sql/migrate.ts';
import type { StoreDb } from '../sql/schema.ts';
import { SqlStore, type SqlEngine } from '../sql/sql-store.ts';
import type { OpenedStore } from '../store.ts';
import { POSTGRES_MIGRATIONS } from './migrations.ts';
import { parsePostgresUrl } from './url.ts';

export interface PostgresStoreOptions {
  /** postgres://user[:password]@host[:port]/database[?schema=name] (docs/operations.md). */
  readonly url: string;
  readonly masterKeyFile: string;
  readonly log?: Logger;
  /** Connections per process (default 10). */
  readonly poolSize?: number;
  /** Schema steps (tests pass a longer list to play a newer amt-scs). */
  readonly migrations?: readonly Migration[];
  /** Counts every query sent (bench: database round trips per device). */
  readonly onQuery?: () => void;
}

/**
 * Serializes schema migrations between nodes starting at once: a transaction-scoped advisory
 * lock ("amt-scs" in ASCII). PostgreSQL only; docs/operations.md says what to do on engines
 * without advisory locks.
 */
const MIGRATION_LOCK = 0x616d742d736373n;

/** int8 (count(*), bigint ids) as a JS number: every value this schema holds is far below 2^53. */
const INT8_OID = 20;
const parseInt8 = (v: string): number => Number(v);
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID && format !== 'binary'
      ? parseInt8
      : (pg.types.getTypeParser as (o: number, f: string) => unknown)(
          oid,
          format ?? 'text',
        )) as typeof pg.types.getTypeParser,
};

/**
 * Opens (or creates) the PSK database on a PostgreSQL server, in the same order as the SQLite
 * adapter: the schema version is read, the master key loaded (created only for an empty
 * database), the data keys unwrapped before any migration writes; then the migrations and the
 * first data key in one transaction under an advisory lock, so nodes starting together migrate
 * once.
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<OpenedStore> {
  const { log } = options;
  const target = parsePostgresUrl(options.url);
  const migrations = options.migrations ?? POSTGRES_MIGRATIONS;
  const pool = new pg.Pool({
    connectionString: target.connectionString,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 10_000,
    // A connection idle this long is closed; the pool opens a new one when needed.
    idleTimeoutMillis: 30_000,
    types,
    ...(target.schema === undefined ? {} : { options: `-c search_path=${target.schema}` }),
  });
  // An idle client losing its server (restart, failover) emits here; unhandled it would kill the process.
  pool.on('error', (err) => log?.warn({ err: { message: err.message } }, 'PostgreSQL connection lost'));
  const onQuery = options.onQuery;
  const db = new Kysely<StoreDb>({
    dialect: new PostgresDialect({ pool }),
    ...(onQuery === undefined ? {} : { log: () => onQuery() }),
  });
  try {
    await sql`select 1`.execute(db).catch((cause: unknown) => {
      throw new ScsError(
        'SCS_STORE_FAILED',
        `cannot connect to PostgreSQL at ${target.display}: ${cause instanceof Error ? cause.message : String(cause)}`,
        { cause, details: { server: target.display } },
      );
    });
    if (target.schema !== undefined) {
      // Two nodes starting together may both create it: the loser's "already exists" is fine.
      await sql`create schema if not exists ${sql.id(target.schema)}`.execute(db).catch(async (e: unknown) => {
        const found = await sql`select 1 from pg_namespace where nspname = ${target.schema}`.execute(db);
        if (found.rows.length === 0) throw e;
      });
    }
    const before = await schemaVersion(db);
    assertNotNewer(before, migrations);
    const master = await loadMasterKey(options.masterKeyFile, { databaseExists: before > 0 });
    if ((master.mode & 0o077) !== 0) {
      log?.warn(
        { file: master.file, mode: master.mode.toString(8) },
        'master key file is readable by group or others; chmod 600 it',
      );
    }
    // A wrong key fails here, before any write; an interrupted rotation of this node is finished;
    // a key another node's rotation replaced is SCS_MASTER_KEY_ROTATED (src/store/sql/data-keys.ts).
    const masterKey =
      before > 0 ? await checkMasterKey(db, master.key.reveal(), options.masterKeyFile, log) : master.key.reveal();
    await db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`.execute(trx);
      const result = await migrate(trx, migrations);
      if (result.from !== result.to) {
        const level = result.from === 0 ? 'debug' : 'info';
        log?.[level]({ server: target.display, from: result.from, to: result.to }, 'database schema migrated');
      }
      await ensureDataKey(trx, masterKey, target.display);
    });
    const { box, watcher } = await openDataKeys(db, masterKey, options.masterKeyFile, log);
    const store = new SqlStore(
      db,
      postgresEngine(() => watcher.stop()),
      box,
    );
    log?.debug({ server: target.display, keyId: box.currentKeyId }, 'PSK database open');
    return { store, masterKey: { file: master.file, created: master.created } };
  } catch (e) {
    await db.destroy();
    if (isScsError(e)) throw e;
    throw new ScsError('SCS_STORE_FAILED', `cannot open the PostgreSQL database ${target.display}: ${String(e)}`, {
      cause: e,
    });
  }
}

/** Rows are locked where a read precedes a write (several nodes write at once). */
function postgresEngine(onClose: () => void): SqlEngine {
  return {
    name: 'postgres',
    lockRows: true,
    close: () => {
      onClose();
      return Promise.resolve();
    },
  };
}
