import { CompiledQuery, type Compilable, type QueryResult } from 'kysely';
import { ScsError } from '../../errors.ts';
import type { HotStatement, SqlContext, SqlEngine } from './sql-store.ts';

/**
 * Hot statements compiled once (docs/performance.md, "Provisioning hot path"). Building a query
 * with kysely (operation nodes, freezing, compiling to SQL) costs more than running most of the
 * provisioning path's small statements on SQLite. A hot statement is still written with kysely,
 * so it stays portable, but with `slot(i)` in place of each value that changes between calls:
 * the first call per engine compiles it and records where each slot went in the parameter list;
 * every later call with that key only binds the new values to the SQL text kept (which the
 * SQLite dialect's statement cache then finds prepared). Values written literally (a constant
 * list of states, say) stay part of the compiled statement.
 *
 * The key names the statement's shape: two builders with the same key must compile to the same
 * SQL, so a builder whose shape depends on its input puts that input in the key.
 */

const SLOT = '\u0000hot-slot:';

/** The placeholder for argument `i` of a hot statement (typed to fit any column). */
export function slot(i: number): never {
  return `${SLOT}${i}` as never;
}

interface Compiled {
  readonly sql: string;
  /** Per parameter: the index of the argument bound there, or a constant compiled in. */
  readonly params: readonly (number | { readonly value: unknown })[];
  /** Prepared on the engine's connection at the first run in a SQLite write transaction (SqlEngine.prepareHot). */
  prepared?: HotStatement;
}

/** Per engine instance (each open store has its own connection to prepare on), per key. */
const compiledByEngine = new WeakMap<SqlEngine, Map<string, Compiled>>();

function compile(query: Compilable, key: string, arity: number): Compiled {
  const c = query.compile();
  const seen = new Set<number>();
  const params = c.parameters.map((p) => {
    if (typeof p === 'string' && p.startsWith(SLOT)) {
      const i = Number(p.slice(SLOT.length));
      seen.add(i);
      return i;
    }
    return { value: p };
  });
  if (seen.size !== arity) {
    throw new ScsError('SCS_STORE_FAILED', `hot statement ${key} binds ${seen.size} of its ${arity} arguments`);
  }
  return { sql: c.sql, params };
}

/**
 * Runs the statement `key` in `ctx` (the store or its open transaction) with `args` in its
 * slots; `build` is called only the first time per engine. Errors are the driver's: callers
 * wrap them (guard, write) as for any other statement.
 */
export function runHot<R>(
  ctx: SqlContext,
  key: string,
  args: readonly unknown[],
  build: () => Compilable<R>,
): Promise<QueryResult<R>> {
  const engine = ctx.engine;
  let byKey = compiledByEngine.get(engine);
  if (byKey === undefined) compiledByEngine.set(engine, (byKey = new Map<string, Compiled>()));
  let c = byKey.get(key);
  if (c === undefined) {
    c = compile(build(), key, args.length);
    byKey.set(key, c);
  }
  const params = c.params.map((p) => (typeof p === 'number' ? args[p] : p.value));
  // Inside a SQLite write transaction, straight on its connection (sql-store.ts, Context.conn),
  // as a statement prepared once: the transaction holds SQLite's one connection, and
  // better-sqlite3 runs each statement to completion synchronously, so it is one of this
  // transaction's statements, in the order issued.
  const conn = ctx.conn;
  if (conn !== undefined) {
    if (engine.prepareHot !== undefined) {
      const prepareHot = engine.prepareHot;
      const compiled = c;
      // A driver error rejects the promise, as from kysely's connection (never a synchronous throw).
      return new Promise((resolve) =>
        resolve((compiled.prepared ??= prepareHot(compiled.sql)).run(params) as QueryResult<R>),
      );
    }
    return conn.executeQuery<R>(CompiledQuery.raw(c.sql, params));
  }
  return ctx.q.executeQuery<R>(CompiledQuery.raw(c.sql, params));
}

/** The first row of a hot statement, or undefined. */
export async function hotFirst<R>(
  ctx: SqlContext,
  key: string,
  args: readonly unknown[],
  build: () => Compilable<R>,
): Promise<R | undefined> {
  return (await runHot(ctx, key, args, build)).rows[0];
}
