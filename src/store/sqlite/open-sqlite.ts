import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely } from 'kysely';
import { generateDataKey, wrapDataKey } from '../../crypto/envelope.ts';
import { loadMasterKey } from '../../crypto/masterKey.ts';
import { isScsError, ScsError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { checkMasterKey, openDataKeys } from '../sql/data-keys.ts';
import { assertNotNewer, migrate, schemaVersion, type Migration } from '../sql/migrate.ts';
import type { StoreDb } from '../sql/schema.ts';
import { SqlStore, type PskInsertRow, type PskPageMove, type SqlEngine } from '../sql/sql-store.ts';
import type { OpenedStore } from '../store.ts';
import { ImmediateSqliteDialect } from './dialect.ts';
import { sqliteStage } from './psk-stage.ts';
import { SQLITE_MIGRATIONS } from './migrations.ts';
import { withoutCheckConstraints } from './without-checks.ts';

export interface SqliteStoreOptions {
  /** Database file (created with its directory, 0700, on first start). */
  readonly file: string;
  readonly masterKeyFile: string;
  readonly log?: Logger;
  /** How long a writer waits for another process's write lock (default 5000 ms). */
  readonly busyTimeoutMs?: number;
  /** Schema steps (tests pass a longer list to play a newer amt-scs). */
  readonly migrations?: readonly Migration[];
}

/** Rows per prepared multi-row INSERT on the hot path: 6 columns x 100 = 600 parameters. */
const BULK_ROWS = 100;

/**
 * Opens (or creates) the SQLite PSK database. Order matters for "a wrong key changes nothing":
 * the master key is loaded (or created, only if the database does not exist yet), then the
 * schema version is checked and the data keys are unwrapped *before* any migration writes.
 */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<OpenedStore> {
  const { file, log } = options;
  const migrations = options.migrations ?? SQLITE_MIGRATIONS;
  const inMemory = file === ':memory:';
  const databaseExists = !inMemory && existsSync(file) && statSync(file).size > 0;
  const master = await loadMasterKey(options.masterKeyFile, { databaseExists });
  if ((master.mode & 0o077) !== 0) {
    log?.warn(
      { file: master.file, mode: master.mode.toString(8) },
      'master key file is readable by group or others; chmod 600 it',
    );
  }

  let raw: Database.Database;
  try {
    if (!inMemory) mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    raw = new Database(file, { timeout: options.busyTimeoutMs ?? 5000 });
    raw.pragma('journal_mode = WAL');
    // FULL: a commit (a PSK marked consumed, an audit entry) survives power loss, not just a crash.
    raw.pragma('synchronous = FULL');
    raw.pragma('foreign_keys = ON');
    raw.pragma('cache_size = -65536');
  } catch (cause) {
    throw new ScsError('SCS_STORE_FAILED', `cannot open SQLite database ${file}`, { cause, details: { file } });
  }
  const db = new Kysely<StoreDb>({ dialect: new ImmediateSqliteDialect({ database: raw }) });
  try {
    let masterKey = master.key.reveal();
    const before = await schemaVersion(db);
    assertNotNewer(before, migrations);
    // A wrong key fails here, before any write; a rotation that committed but did not rename its
    // new key file yet is finished; a key a rotation replaced is SCS_MASTER_KEY_ROTATED.
    if (before > 0) masterKey = await checkMasterKey(db, masterKey, options.masterKeyFile, log);
    await db.transaction().execute(async (trx) => {
      const result = await migrate(trx, migrations);
      if (result.from !== result.to) {
        // Creating a new database is routine (debug); upgrading an existing one is news (info).
        const level = result.from === 0 ? 'debug' : 'info';
        log?.[level]({ file, from: result.from, to: result.to }, 'database schema migrated');
      }
      const keys = await trx.selectFrom('data_keys').select('key_id').execute();
      if (keys.length === 0) {
        const used = await trx.selectFrom('psks').select('id').limit(1).executeTakeFirst();
        if (used !== undefined) {
          throw new ScsError('SCS_MASTER_KEY_MISMATCH', `database ${file} holds PSKs but no data key`);
        }
        const dek = generateDataKey();
        await trx
          .insertInto('data_keys')
          .values({
            key_id: 1,
            wrapped: wrapDataKey(masterKey, 1, dek),
            created_at: new Date().toISOString(),
            status: 'active',
          })
          .execute();
        dek.fill(0);
      }
    });
    const { box, watcher } = await openDataKeys(db, masterKey, options.masterKeyFile, log);
    const store = new SqlStore(
      db,
      sqliteEngine(raw, () => watcher.stop()),
      box,
    );
    log?.debug({ file, keyId: box.currentKeyId }, 'PSK database open');
    return { store, masterKey: { file: master.file, created: master.created } };
  } catch (e) {
    await db.destroy();
    if (raw.open) raw.close();
    if (isScsError(e)) throw e;
    throw new ScsError('SCS_STORE_FAILED', `cannot open SQLite database ${file}: ${String(e)}`, { cause: e });
  }
}

/**
 * The SQLite hot path: prepared multi-row INSERTs straight on better-sqlite3 (kysely would
 * compile and prepare a fresh statement per call). Rows of one call carry distinct PIDs. Safe because SqlStore only calls it inside a
 * transaction, which holds kysely's one SQLite connection, and better-sqlite3 runs synchronously.
 */
function sqliteEngine(raw: Database.Database, onClose: () => void): SqlEngine {
  let bulk: Database.Statement | undefined;
  let single: Database.Statement | undefined;
  let maxId: Database.Statement | undefined;
  let olderThan: Database.Statement | undefined;
  const sqlFor = (n: number): string =>
    `insert into psks (pid, pps, batch, state, created_at, updated_at) values ` +
    `${Array.from({ length: n }, () => '(?, ?, ?, ?, ?, ?)').join(', ')} on conflict (pid) do nothing`;
  const push = (params: unknown[], r: PskInsertRow): void => {
    params.push(r.pid, r.pps, r.batch, r.state, r.created_at, r.updated_at);
  };
  let move: Database.Statement | undefined;
  let moveInBatch: Database.Statement | undefined;
  const moveSql = (batch: boolean): string =>
    // Unary + keeps the planner on the rowid range instead of the state index
    // (sqlite.org/optoverview.html, "Disqualifying WHERE clause terms using unary-+").
    `update psks set state = ?, prior_state = ?, updated_at = ? where id >= ? and id <= ? and +state = ?` +
    (batch ? ' and batch = ?' : '');
  /**
   * A page's move without the CHECK constraints on state and prior_state (without-checks.ts):
   * they were about half of this UPDATE's time (docs/psk-database.md, "Export --move: the state
   * change"). The values written are checked before (isPskState, canTransition).
   */
  const movePskPage = (m: PskPageMove): number => {
    const stmt =
      m.batch === undefined ? (move ??= raw.prepare(moveSql(false))) : (moveInBatch ??= raw.prepare(moveSql(true)));
    const params: unknown[] = [m.to, m.priorState, m.updatedAt, m.firstId, m.lastId, m.from];
    if (m.batch !== undefined) params.push(m.batch);
    return withoutCheckConstraints(raw, () => stmt.run(params).changes);
  };
  return {
    name: 'sqlite',
    lockRows: false,
    // The same calls and results as kysely's SqliteConnection.executeQuery, without a compiled
    // query object, the statement cache lookup and kysely's connection per statement.
    prepareHot(sql) {
      const stmt = raw.prepare(sql);
      if (stmt.reader) return { run: (params) => ({ rows: stmt.all(params) }) };
      return {
        run(params) {
          const { changes, lastInsertRowid } = stmt.run(params);
          return { rows: [], numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid) };
        },
      };
    },
    stagePsks: () => sqliteStage(raw),
    movePskPage,
    close: () => {
      onClose();
      return Promise.resolve();
    },
    insertPsks(rows) {
      const many = (bulk ??= raw.prepare(sqlFor(BULK_ROWS)));
      const one = (single ??= raw.prepare(sqlFor(1)));
      maxId ??= raw.prepare('select coalesce(max(id), 0) from psks').pluck();
      olderThan ??= raw.prepare('select pid from psks where pid = ? and id <= ?').pluck();
      // Counting changes instead of RETURNING saves a sixth of the insert time. The rare rows
      // skipped as existing are found afterwards: they are the ones with an id from before.
      const before = maxId.get() as number;
      // Without psks' CHECK constraints for these statements, as movePskPage above
      // (without-checks.ts): insertMany checked every row first (a parsed PID, one of
      // INITIAL_STATES, no prior state).
      const changes = withoutCheckConstraints(raw, () => {
        let n = 0;
        let i = 0;
        for (; i + BULK_ROWS <= rows.length; i += BULK_ROWS) {
          const params: unknown[] = [];
          for (let k = i; k < i + BULK_ROWS; k++) push(params, rows[k] as PskInsertRow);
          n += many.run(params).changes;
        }
        for (; i < rows.length; i++) {
          const params: unknown[] = [];
          push(params, rows[i] as PskInsertRow);
          n += one.run(params).changes;
        }
        return n;
      });
      if (changes === rows.length) return [];
      const skipped: string[] = [];
      for (const r of rows) if (olderThan.get(r.pid, before) !== undefined) skipped.push(r.pid);
      return skipped;
    },
  };
}
