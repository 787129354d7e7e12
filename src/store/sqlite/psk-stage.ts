import type Database from 'better-sqlite3';
import type { ExistingRow, PskStage, StagedRows } from '../sql/bulk-insert.ts';

/** Rows per prepared multi-row INSERT into the stage: 3 columns x 200 = 600 parameters. */
const STAGE_ROWS = 200;

/**
 * **(choice)** Page cache while the staged rows go into psks: 16 MiB instead of the
 * connection's 64. SQLite's sorter holds as much as the page cache in memory before it spills,
 * and inserting in PID order touches each page of the PID index once, so a big cache only
 * raises peak RSS (by ~100 MB for a million rows) without making the insert faster.
 */
const INSERT_CACHE_KIB = 16 * 1024;
/** Page cache of the temporary database that holds the stage. */
const STAGE_CACHE_KIB = 2 * 1024;

/**
 * The SQLite stage of psks.bulkInsert: temporary tables without any index (appending is cheap)
 * on the transaction's connection. Created inside the write transaction, they disappear with a
 * rollback as well. They hold sealed PPS only, never plaintext (SQLite may spill the temporary
 * database to an unlinked file).
 *
 * Batch, state and creation time repeat over long runs of rows, so each distinct combination
 * is one row of `psk_stage_meta` and a staged row carries only its id: three values bound per
 * row (PID, sealed PPS, meta id) instead of five strings and a blob.
 */
export function sqliteStage(raw: Database.Database): PskStage {
  // Appending touches only the last pages of the stage: a small cache for the temporary
  // database (SQLite's default is 16 MB) keeps the rest in its file, out of the process's RSS.
  raw.pragma(`temp.cache_size = -${STAGE_CACHE_KIB}`);
  raw.exec('drop table if exists temp.psk_stage');
  raw.exec('drop table if exists temp.psk_stage_meta');
  raw.exec('create temp table psk_stage (pid text not null, pps blob not null, meta integer not null)');
  raw.exec(
    'create temp table psk_stage_meta (id integer primary key, batch text not null, state text not null, ' +
      'created_at text not null)',
  );
  const sqlFor = (n: number): string =>
    `insert into temp.psk_stage (pid, pps, meta) values ${Array.from({ length: n }, () => '(?, ?, ?)').join(', ')}`;
  const bulk = raw.prepare(sqlFor(STAGE_ROWS));
  const single = raw.prepare(sqlFor(1));
  const addMeta = raw.prepare('insert into temp.psk_stage_meta (id, batch, state, created_at) values (?, ?, ?, ?)');
  const params: unknown[] = new Array<unknown>(STAGE_ROWS * 3);
  const metaIds = new Map<string, number>();
  let lastBatch: string | undefined;
  let lastState: string | undefined;
  let lastCreated: string | undefined;
  let lastMeta = 0;
  const metaOf = (batch: string, state: string, created: string): number => {
    if (batch === lastBatch && state === lastState && created === lastCreated) return lastMeta;
    const key = `${batch}\n${state}\n${created}`;
    let id = metaIds.get(key);
    if (id === undefined) {
      id = metaIds.size + 1;
      metaIds.set(key, id);
      addMeta.run(id, batch, state, created);
    }
    lastBatch = batch;
    lastState = state;
    lastCreated = created;
    lastMeta = id;
    return id;
  };
  let existing: Database.Statement | undefined;
  let repeated: Database.Statement | undefined;
  let groups: Database.Statement | undefined;
  let cacheBefore: number | undefined;
  return {
    append(r: StagedRows): void {
      let i = 0;
      for (; i + STAGE_ROWS <= r.count; i += STAGE_ROWS) {
        for (let k = 0, at = 0; k < STAGE_ROWS; k++) {
          const j = i + k;
          params[at++] = r.pids[j];
          params[at++] = r.pps[j];
          params[at++] = metaOf(r.batches[j] as string, r.states[j] as string, r.createdAt[j] as string);
        }
        bulk.run(params);
      }
      for (; i < r.count; i++) {
        single.run(r.pids[i], r.pps[i], metaOf(r.batches[i] as string, r.states[i] as string, r.createdAt[i] as string));
      }
      params.fill(undefined);
    },
    insert(updatedAt) {
      const maxIdBefore = raw.prepare('select coalesce(max(id), 0) from main.psks').pluck().get() as number;
      cacheBefore ??= raw.pragma('main.cache_size', { simple: true }) as number;
      raw.pragma(`main.cache_size = -${INSERT_CACHE_KIB}`);
      // Key order: the PID index grows at its right edge (or in one sequential pass through an
      // existing one) instead of taking a million random inserts; of a PID staged twice the
      // first wins. CROSS JOIN keeps the stage as the outer loop; "where true": SQLite's
      // grammar needs a WHERE before ON CONFLICT in INSERT ... SELECT.
      const { changes } = raw
        .prepare(
          'insert into main.psks (pid, pps, batch, state, created_at, updated_at) ' +
            'select s.pid, s.pps, m.batch, m.state, m.created_at, ? ' +
            'from temp.psk_stage s cross join temp.psk_stage_meta m on m.id = s.meta where true ' +
            'order by s.pid, s.rowid on conflict (pid) do nothing',
        )
        .run(updatedAt);
      return { inserted: changes, maxIdBefore };
    },
    existing(maxIdBefore) {
      existing ??= raw.prepare(
        'select s.pid as pid, s.pps as offered, p.pps as stored from temp.psk_stage s ' +
          'join main.psks p on p.pid = s.pid where p.id <= ?',
      );
      return existing.all(maxIdBefore) as ExistingRow[];
    },
    repeated() {
      repeated ??= raw.prepare(
        'select pid, pps from temp.psk_stage where pid in ' +
          '(select pid from temp.psk_stage group by pid having count(*) > 1) order by pid, rowid',
      );
      return repeated.all() as { pid: string; pps: Buffer }[];
    },
    insertedGroups(from, to) {
      groups ??= raw.prepare(
        "select batch, group_concat(pid, ',') as pids from " +
          '(select batch, pid from main.psks where id > ? and id <= ? order by id) group by batch',
      );
      return groups.all(from, to) as { batch: string; pids: string }[];
    },
    drop(): void {
      raw.exec('drop table temp.psk_stage');
      raw.exec('drop table temp.psk_stage_meta');
    },
    end(): void {
      if (cacheBefore !== undefined && raw.open) raw.pragma(`main.cache_size = ${cacheBefore}`);
      cacheBefore = undefined;
    },
  };
}
