import { ScsError } from '../../errors.ts';

export interface PostgresTarget {
  /** What pg connects with (the `schema` parameter removed). */
  readonly connectionString: string;
  /** Where amt-scs keeps its tables; undefined = the server's search_path (public). */
  readonly schema: string | undefined;
  /** host:port/database, for logs and errors: never the password. */
  readonly display: string;
}

/**
 * Reads `postgres://user[:password]@host[:port]/database[?schema=name&sslmode=...]`. `schema`
 * is amt-scs's own parameter (several installations, or test runs, in one database); every
 * other parameter goes to pg unchanged.
 */
export function parsePostgresUrl(url: string): PostgresTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ScsError('SCS_CONFIG_INVALID', '--db: not a valid postgres:// URL');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new ScsError('SCS_CONFIG_INVALID', `--db: expected postgres://, got ${u.protocol}//`);
  }
  const schema = u.searchParams.get('schema') ?? undefined;
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new ScsError('SCS_CONFIG_INVALID', `--db: schema "${schema}" must be a lowercase SQL identifier`);
  }
  u.searchParams.delete('schema');
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || '(default)';
  return {
    connectionString: u.toString(),
    schema,
    display: `${u.hostname || 'localhost'}:${u.port || '5432'}/${database}${schema === undefined ? '' : `?schema=${schema}`}`,
  };
}
