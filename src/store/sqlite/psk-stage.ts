import type Database from 'better-sqlite3';
import { ScsError } from '../../errors.ts';
import type { ExistingRow, PskStage, StagedRows } from '../sql/bulk-insert.ts';
import { withoutCheckConstraints } from './without-checks.ts';

/** A PID's bytes at the start of a staged record (then the sealed PPS). */
const PID_BYTES = 8;

/**
 * **(choice)** Page cache while the staged rows go into psks: 16 MiB instead of the
 * connection's 64. SQLite's sorter holds as much as the page cache in memory before it spills,
 * and inserting in PID order touches each page of the PID index once. In a side-by-side test
 * of a million rows (load 13) 64 MiB peaked ~106 MB higher than 16 MiB and was not faster
 * (9.0 s against 9.2 s; 8 MiB 7.7 s); the cache goes back to its size at the end.
 */
const INSERT_CACHE_KIB = 16 * 1024;
/** A staged record's PID (text, as psks stores it) and sealed PPS. */
const PID_OF = `cast(substr(s.rec, 1, ${PID_BYTES}) as text)`;
const PPS_OF = `substr(s.rec, ${PID_BYTES + 1})`;
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
  raw.exec('create temp table psk_stage (rec blob not null, meta integer not null)');
  raw.exec(
    'create temp table psk_stage_meta (id integer primary key, batch text not null, state text not null, ' +
      'created_at text not null)',
  );
  // One statement per run of rows with the same meta row: the rows arrive as one blob of
  // fixed-size records (PID, then the sealed PPS) that SQLite cuts up itself, instead of three
  // values bound from JavaScript per row.
  const appendRun = raw.prepare(
    'insert into temp.psk_stage (rec, meta) ' +
      'with recursive k(n) as (select 0 union all select n + 1 from k where n + 1 < ?) ' +
      'select substr(?, n * ? + 1, ?), ? from k',
  );
  const addMeta = raw.prepare('insert into temp.psk_stage_meta (id, batch, state, created_at) values (?, ?, ?, ?)');
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
  let scratch = Buffer.alloc(0);
  return {
    append(r: StagedRows): void {
      let i = 0;
      while (i < r.count) {
        const meta = metaOf(r.batches[i] as string, r.states[i] as string, r.createdAt[i] as string);
        let end = i + 1;
        while (
          end < r.count &&
          r.batches[end] === lastBatch &&
          r.states[end] === lastState &&
          r.createdAt[end] === lastCreated
        ) {
          end++;
        }
        const size = PID_BYTES + (r.pps[i] as Buffer).length;
        // One buffer for every run (better-sqlite3 is done with a bound blob when run() returns):
        // fewer large allocations waiting for the garbage collector.
        if (scratch.length < size * (end - i)) scratch = Buffer.allocUnsafeSlow(size * (end - i));
        const recs = scratch.subarray(0, size * (end - i));
        for (let j = i, at = 0; j < end; j++, at += size) {
          recs.write(r.pids[j] as string, at, PID_BYTES, 'latin1');
          const blob = r.pps[j] as Buffer;
          if (blob.length !== size - PID_BYTES)
            throw new ScsError('SCS_STORE_FAILED', 'staged PPS of different lengths');
          blob.copy(recs, at + PID_BYTES);
        }
        appendRun.run(end - i, recs, size, size, meta);
        i = end;
      }
    },
    insert(updatedAt) {
      const maxIdBefore = raw.prepare('select coalesce(max(id), 0) from main.psks').pluck().get() as number;
      cacheBefore ??= raw.pragma('main.cache_size', { simple: true }) as number;
      raw.pragma(`main.cache_size = -${INSERT_CACHE_KIB}`);
      // Key order: the PID index grows at its right edge (or in one sequential pass through an
      // existing one) instead of taking a million random inserts; of a PID staged twice the
      // first wins. CROSS JOIN keeps the stage as the outer loop; "where true": SQLite's
      // grammar needs a WHERE before ON CONFLICT in INSERT ... SELECT.
      //
      // **(choice)** Without psks' CHECK constraints for this one statement, as movePskPage
      // (open-sqlite.ts) does: 1.3 of 4.3 s for a million rows (without-checks.ts). Every value here is checked before it is
      // staged: the PID is 8 bytes (a parsed PID, written as such by `append`), the state one of
      // INITIAL_STATES (bulk-insert.ts checkColumns), prior_state null.
      const { changes } = withoutCheckConstraints(raw, () =>
        raw
          .prepare(
            'insert into main.psks (pid, pps, batch, state, created_at, updated_at) ' +
              `select ${PID_OF}, ${PPS_OF}, m.batch, m.state, m.created_at, ? ` +
              'from temp.psk_stage s cross join temp.psk_stage_meta m on m.id = s.meta where true ' +
              `order by ${PID_OF}, s.rowid on conflict (pid) do nothing`,
          )
          .run(updatedAt),
      );
      return { inserted: changes, maxIdBefore };
    },
    existing(maxIdBefore) {
      existing ??= raw.prepare(
        `select ${PID_OF} as pid, ${PPS_OF} as offered, p.pps as stored from temp.psk_stage s ` +
          `join main.psks p on p.pid = ${PID_OF} where p.id <= ?`,
      );
      return existing.all(maxIdBefore) as ExistingRow[];
    },
    repeated() {
      repeated ??= raw.prepare(
        `select ${PID_OF} as pid, ${PPS_OF} as pps from temp.psk_stage s where ${PID_OF} in ` +
          `(select ${PID_OF} from temp.psk_stage s group by 1 having count(*) > 1) order by 1, s.rowid`,
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
