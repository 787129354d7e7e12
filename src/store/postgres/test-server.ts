import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * The PostgreSQL server tests run against: SCS_TEST_PG_URL (CI exports it), else a local
 * server on the default port if one answers. Outside CI an unreachable server skips the
 * PostgreSQL tests with the reason printed; in CI (CI=true) it is a failure, so a broken CI
 * set-up never passes by skipping.
 */
export const DEFAULT_TEST_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export type PgTestServer =
  { readonly url: string; readonly skip: undefined } | { readonly url: undefined; readonly skip: string };

let probed: Promise<PgTestServer> | undefined;

export function pgTestServer(env: NodeJS.ProcessEnv = process.env): Promise<PgTestServer> {
  probed ??= probe(env);
  return probed;
}

async function probe(env: NodeJS.ProcessEnv): Promise<PgTestServer> {
  const url = env.SCS_TEST_PG_URL ?? DEFAULT_TEST_PG_URL;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('select 1');
    return { url, skip: undefined };
  } catch (e) {
    const why = `no PostgreSQL reachable at ${redact(url)} (${e instanceof Error ? e.message : String(e)}); set SCS_TEST_PG_URL`;
    if (env.CI === 'true') throw new Error(`CI: ${why}`);
    process.stderr.write(`# skipping the PostgreSQL tests: ${why}\n`);
    return { url: undefined, skip: why };
  } finally {
    await client.end().catch(() => undefined);
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

export interface FreshSchema {
  /** The server URL with `?schema=<fresh name>`: an empty installation of its own. */
  readonly url: string;
  readonly schema: string;
  /** Runs SQL in the schema, outside any store (tamper tests, checks). */
  query(sql: string, params?: readonly unknown[]): Promise<Record<string, unknown>[]>;
  /** Drops the schema and everything in it. */
  drop(): Promise<void>;
}

/**
 * A new, empty schema on the test server, so every test (and every test process) has its own
 * installation. It also gets `hex(bytea)` as SQLite has it, for the contract suites' raw scans.
 */
export async function freshSchema(serverUrl: string): Promise<FreshSchema> {
  const schema = `scs_t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: serverUrl, options: `-c search_path=${schema}` });
  await client.connect();
  await client.query(`create schema ${schema}`);
  await client.query(
    `create function ${schema}.hex(bytea) returns text language sql immutable as $$ select upper(encode($1, 'hex')) $$`,
  );
  const u = new URL(serverUrl);
  u.searchParams.set('schema', schema);
  let dropped = false;
  return {
    url: u.toString(),
    schema,
    query: async (sql, params) =>
      (await client.query(sql, params as unknown[] | undefined)).rows as Record<string, unknown>[],
    drop: async () => {
      if (dropped) return;
      dropped = true;
      try {
        await client.query(`drop schema ${schema} cascade`);
      } finally {
        await client.end();
      }
    },
  };
}
