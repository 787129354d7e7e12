import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { ScsError } from '../../errors.ts';
import type { Store } from '../store.ts';
import type { StoreDb } from './schema.ts';
import { SqlStore } from './sql-store.ts';

/**
 * Copies a whole installation from a SQLite store into an empty PostgreSQL store of the same
 * schema version (`amt-scs db migrate`, docs/operations.md, "Moving from SQLite"). Rows are
 * copied as they are: sealed secrets stay sealed (the data keys are copied too, still wrapped by
 * the same master key), ids, audit sequence numbers and hashes are kept, so the audit chain
 * verifies on the target. The source is read inside one write transaction (no server can write
 * to it meanwhile: a consistent snapshot); the target is written in one transaction, so a failed
 * copy leaves it as it was.
 */

export interface CopyProgress {
  readonly table: string;
  readonly copied: number;
  readonly total: number;
}

export interface CopyOptions {
  /** Replace whatever the target holds (default: refuse a target with any data). */
  readonly force?: boolean;
  readonly onProgress?: (p: CopyProgress) => void;
}

export interface CopyResult {
  /** Rows per table, equal on both sides (checked after the copy). */
  readonly tables: Readonly<Record<string, number>>;
  /** SHA-256 over every (pid, sealed pps) in id order, equal on both sides. */
  readonly pskDigest: string;
}

/** Tables written before the tables whose foreign keys point at them. */
const FIRST = ['data_keys', 'batches', 'psk_exports'];
/** Rows a migration inserts into a new database; the copy replaces them, they do not make it "non-empty". */
const SEEDED = new Set(['audit_head', 'profiles', 'data_keys', 'schema_migrations']);
/** Bound parameters per INSERT, below PostgreSQL's 65535. */
const MAX_PARAMS = 30_000;
const READ_PAGE = 2000;

export async function copyInstallation(from: Store, to: Store, options: CopyOptions = {}): Promise<CopyResult> {
  const src = SqlStore.rawOf(from);
  const dst = SqlStore.rawOf(to);
  if (src?.engine.name !== 'sqlite' || dst?.engine.name !== 'postgres') {
    throw new ScsError('SCS_ARGUMENT_INVALID', 'db migrate copies a SQLite database into a PostgreSQL database');
  }
  const [srcVersion, dstVersion] = await Promise.all([maxVersion(src.db), maxVersion(dst.db)]);
  if (srcVersion !== dstVersion) {
    throw new ScsError(
      'SCS_STORE_FAILED',
      `schema versions differ (source ${srcVersion}, target ${dstVersion}): open both with this amt-scs first`,
    );
  }
  return src.db.transaction().execute(async (s) => {
    const names = (
      await sql<{
        name: string;
      }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`.execute(s)
    ).rows
      .map((r) => r.name)
      .filter((n) => n !== 'schema_migrations');
    const tables = [...FIRST.filter((t) => names.includes(t)), ...names.filter((t) => !FIRST.includes(t)).sort()];
    const totals: Record<string, number> = {};
    for (const t of tables) totals[t] = await count(s, t);
    const copied = await dst.db.transaction().execute(async (d) => {
      const present = new Set(
        (
          await sql<{
            name: string;
          }>`select table_name as name from information_schema.tables where table_schema = current_schema()`.execute(d)
        ).rows.map((r) => r.name),
      );
      const missing = tables.filter((t) => !present.has(t));
      if (missing.length > 0) throw new ScsError('SCS_STORE_FAILED', `the target has no table ${missing.join(', ')}`);
      if (options.force !== true) {
        for (const t of tables) {
          if (SEEDED.has(t)) continue;
          if ((await count(d, t)) > 0) {
            throw new ScsError(
              'SCS_ARGUMENT_INVALID',
              `the target database is not empty (table ${t} has rows): pass --force to replace its contents`,
              { details: { table: t } },
            );
          }
        }
        const head = await d.selectFrom('audit_head').select('seq').executeTakeFirst();
        if (Number(head?.seq ?? 0) > 0) {
          throw new ScsError(
            'SCS_ARGUMENT_INVALID',
            'the target database has audit entries: pass --force to replace them',
          );
        }
      }
      // TRUNCATE, not DELETE: the audit log refuses row deletes (its triggers fire on DELETE only).
      await sql`truncate table ${sql.join(tables.map((t) => sql.table(t)))}`.execute(d);
      for (const t of tables) await copyTable(s, d, t, totals[t] ?? 0, options.onProgress);
      await resetIdentities(d);
      return true;
    });
    void copied;
    // Verified after the commit, from the target as stored.
    const out: Record<string, number> = {};
    for (const t of tables) {
      const n = await count(dst.db, t);
      if (n !== totals[t]) {
        throw new ScsError('SCS_STORE_FAILED', `table ${t}: ${totals[t] ?? 0} rows in the source, ${n} in the target`);
      }
      out[t] = n;
    }
    const [a, b] = [await pskDigest(s), await pskDigest(dst.db)];
    if (a !== b) throw new ScsError('SCS_STORE_FAILED', 'the PSKs in the target differ from the source');
    return { tables: out, pskDigest: a };
  });
}

async function maxVersion(db: Kysely<StoreDb>): Promise<number> {
  const r = await db
    .selectFrom('schema_migrations')
    .select((eb) => eb.fn.max('version').as('v'))
    .executeTakeFirst();
  return Number(r?.v ?? 0);
}

async function count(db: Kysely<StoreDb>, table: string): Promise<number> {
  const r = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}`.execute(db);
  return Number(r.rows[0]?.n ?? 0);
}

async function copyTable(
  s: Kysely<StoreDb>,
  d: Kysely<StoreDb>,
  table: string,
  total: number,
  onProgress: CopyOptions['onProgress'],
): Promise<void> {
  let after = 0;
  let copied = 0;
  onProgress?.({ table, copied, total });
  for (;;) {
    const page = (
      await sql<
        Record<string, unknown>
      >`select rowid as scs_rowid__, * from ${sql.table(table)} where rowid > ${after} order by rowid limit ${READ_PAGE}`.execute(
        s,
      )
    ).rows;
    if (page.length === 0) break;
    after = Number(page.at(-1)?.scs_rowid__);
    const columns = Object.keys(page[0] as object).filter((c) => c !== 'scs_rowid__');
    const per = Math.max(1, Math.floor(MAX_PARAMS / columns.length));
    for (let i = 0; i < page.length; i += per) {
      const rows = page.slice(i, i + per);
      await sql`insert into ${sql.table(table)} (${sql.join(columns.map((c) => sql.id(c)))}) values ${sql.join(
        rows.map((r) => sql`(${sql.join(columns.map((c) => r[c]))})`),
      )}`.execute(d);
    }
    copied += page.length;
    onProgress?.({ table, copied, total });
  }
}

/** Identity columns continue after the copied ids (new rows would otherwise collide with them). */
async function resetIdentities(d: Kysely<StoreDb>): Promise<void> {
  const cols = (
    await sql<{ t: string; c: string }>`select table_name as t, column_name as c from information_schema.columns
      where table_schema = current_schema() and is_identity = 'YES'`.execute(d)
  ).rows;
  for (const { t, c } of cols) {
    await sql`select setval(pg_get_serial_sequence(${t}, ${c}), coalesce((select max(${sql.id(c)}) from ${sql.table(t)}), 0) + 1, false)`.execute(
      d,
    );
  }
}

async function pskDigest(db: Kysely<StoreDb>): Promise<string> {
  const h = createHash('sha256');
  let after = 0;
  for (;;) {
    const rows = await db
      .selectFrom('psks')
      .select(['id', 'pid', 'pps'])
      .where('id', '>', after)
      .orderBy('id')
      .limit(5000)
      .execute();
    for (const r of rows) h.update(`${Number(r.id)}:${r.pid}:`).update(r.pps);
    const last = rows.at(-1);
    if (last === undefined) break;
    after = Number(last.id);
  }
  return h.digest('hex');
}
