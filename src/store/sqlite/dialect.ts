import {
  CompiledQuery,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type Driver,
  type SqliteDatabase,
  type SqliteDialectConfig,
  type SqliteStatement,
} from 'kysely';

/**
 * Kysely's SQLite driver starts transactions with a deferred BEGIN: two processes that both read
 * then write can deadlock, and SQLite answers the second with SQLITE_BUSY immediately, which no
 * busy timeout retries. BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy
 * timeout), so every Store transaction is a writer from its first statement.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

/** Statements kept per connection (SQL texts differ by shape, not by values: a few hundred cover the server). */
const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely's SQLite driver prepares every query afresh; preparing costs more than running most of
 * these small statements. This reuses a prepared statement per SQL text (LRU), except while it
 * is busy (an open .iterate() of a streamed query), when a fresh one is prepared.
 */
export function withStatementCache(db: SqliteDatabase, size = STATEMENT_CACHE_SIZE): SqliteDatabase {
  const cache = new Map<string, SqliteStatement & { readonly busy?: boolean }>();
  return {
    close: () => db.close(),
    prepare(sql) {
      const hit = cache.get(sql);
      if (hit !== undefined && hit.busy !== true) {
        cache.delete(sql);
        cache.set(sql, hit);
        return hit;
      }
      const statement = db.prepare(sql);
      cache.set(sql, statement);
      if (cache.size > size) {
        const oldest = cache.keys().next().value;
        if (oldest !== undefined) cache.delete(oldest);
      }
      return statement;
    },
  };
}

export class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    const cached: SqliteDialectConfig =
      typeof config.database === 'function' ? config : { ...config, database: withStatementCache(config.database) };
    super(cached);
    this.#config = cached;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}
