/**
 * `psks.bulkInsert`: a whole import (a million PSKs) inside one transaction, without an object
 * per PSK and without inserting into the PID index in random order (docs/psk-database.md,
 * "Bulk import").
 *
 * With an engine stage (SQLite): each `add` seals its PPS on the seal worker while the rows
 * sealed before are appended to a temporary table (no index, so appending is cheap); `finish`
 * moves every staged row into `psks` with one `INSERT ... SELECT ... ORDER BY pid`, so the PID
 * index grows in key order, one pass. Duplicates cost nothing unless the inserted count falls
 * short; only then are the skipped rows looked up (one join on the PID index) and their PPS
 * compared. Without one (PostgreSQL): chunks of insertMany, as before.
 */
import { ScsError } from '../../errors.ts';
import type { Pid } from '../../psk/pid.ts';
import { PPS_LENGTH } from '../../psk/pps.ts';
import { Secret } from '../../secret.ts';
import { checkBatchName } from '../batch.ts';
import type { PskState } from '../lifecycle.ts';
import type { AuditEntryInput, InsertContext, InsertResult, NewPsk, PskBulkInsert, PskColumns } from '../store.ts';
import { AUDIT_PIDS_PER_ENTRY, appendAudit, INITIAL_STATES, type SqlContext } from './sql-store.ts';

/** Sealed rows for an engine's stage: row i is pids[i], pps[i] (sealed), batches[i], ... */
export interface StagedRows {
  readonly count: number;
  readonly pids: readonly string[];
  readonly pps: readonly Buffer[];
  readonly batches: readonly string[];
  readonly states: readonly string[];
  /** ISO-8601 text, as stored. */
  readonly createdAt: readonly string[];
}

/** A staged row whose PID was in `psks` before the insert: both PPS sealed. */
export interface ExistingRow {
  readonly pid: string;
  readonly offered: Buffer;
  readonly stored: Buffer;
}

/**
 * The engine side (SqlEngine.stagePsks): a temporary table on the transaction's connection,
 * gone with the transaction (also when it rolls back). Synchronous: better-sqlite3.
 */
export interface PskStage {
  append(rows: StagedRows): void;
  /**
   * Inserts every staged row into psks in PID order (of a PID staged twice the first one),
   * skipping PIDs present; `updatedAt` for every row. Returns the rows inserted and the largest
   * id before (the inserted rows are the ids after it, consecutive).
   */
  insert(updatedAt: string): { readonly inserted: number; readonly maxIdBefore: number };
  /** Staged rows whose PID was in psks with an id up to `maxIdBefore`. */
  existing(maxIdBefore: number): ExistingRow[];
  /** Staged rows of PIDs staged more than once, by PID then in staging order. */
  repeated(): { readonly pid: string; readonly pps: Buffer }[];
  /** PIDs (comma-joined, id order) of rows with ids in (from, to], grouped by batch. */
  insertedGroups(from: number, to: number): { readonly batch: string; readonly pids: string }[];
  drop(): void;
  /** Undoes what `insert` changed on the connection (its page cache size); always called, also after an error. */
  end(): void;
}

/** Audit entries built and appended at a time. */
const AUDIT_ENTRIES_PER_APPEND = 50;

export function bulkInsert(
  ctx: SqlContext,
  context: InsertContext,
  insertMany: (rows: readonly NewPsk[]) => Promise<InsertResult>,
): PskBulkInsert {
  if (!ctx.inTx) throw new ScsError('SCS_STORE_FAILED', 'psks.bulkInsert outside a transaction');
  const makeStage = ctx.engine.stagePsks;
  return makeStage === undefined ? new ChunkedBulkInsert(insertMany) : new StagedBulkInsert(ctx, context, makeStage);
}

/** Checks the column lengths, batch names (once per name) and initial states (once per value). */
function checkColumns(c: PskColumns, batches: Set<string>): void {
  if (!Number.isSafeInteger(c.count) || c.count < 0 || c.pps.length !== c.count * PPS_LENGTH) {
    throw new ScsError('SCS_STORE_FAILED', 'bulkInsert: the columns do not have the same length');
  }
  if (c.pids.length < c.count || c.batches.length < c.count || c.states.length < c.count) {
    throw new ScsError('SCS_STORE_FAILED', 'bulkInsert: the columns do not have the same length');
  }
  let lastState: string | undefined;
  let lastBatch: string | undefined;
  for (let i = 0; i < c.count; i++) {
    const state = c.states[i] as PskState;
    if (state !== lastState) {
      if (!INITIAL_STATES.includes(state)) {
        throw new ScsError('SCS_PSK_STATE_INVALID', `a PSK cannot enter the database as ${state}`);
      }
      lastState = state;
    }
    const batch = c.batches[i] as string;
    if (batch !== lastBatch) {
      if (!batches.has(batch)) {
        checkBatchName(batch);
        batches.add(batch);
      }
      lastBatch = batch;
    }
  }
}

/** Without an engine stage: insertMany per add (each in the caller's transaction). */
class ChunkedBulkInsert implements PskBulkInsert {
  readonly #insertMany: (rows: readonly NewPsk[]) => Promise<InsertResult>;
  readonly #batches = new Set<string>();
  #inserted = 0;
  readonly #duplicates: Pid[] = [];
  readonly #conflicts: Pid[] = [];

  constructor(insertMany: (rows: readonly NewPsk[]) => Promise<InsertResult>) {
    this.#insertMany = insertMany;
  }

  async add(c: PskColumns): Promise<void> {
    try {
      checkColumns(c, this.#batches);
      const rows: NewPsk[] = [];
      for (let i = 0; i < c.count; i++) {
        rows.push({
          pid: c.pids[i] as Pid,
          pps: new Secret(c.pps.toString('latin1', i * PPS_LENGTH, (i + 1) * PPS_LENGTH)) as NewPsk['pps'],
          batch: c.batches[i] as string,
          state: c.states[i] as PskState,
          createdAt: new Date(c.createdAt[i] as number),
        });
      }
      const r = await this.#insertMany(rows);
      this.#inserted += r.inserted;
      for (const p of r.duplicates) this.#duplicates.push(p);
      for (const p of r.conflicts) this.#conflicts.push(p);
    } finally {
      c.pps.fill(0);
    }
  }

  finish(): Promise<InsertResult> {
    return Promise.resolve({ inserted: this.#inserted, duplicates: this.#duplicates, conflicts: this.#conflicts });
  }
}

interface Sealing {
  readonly columns: PskColumns;
  readonly createdAt: string[];
  readonly blobs: Promise<Buffer[]>;
}

class StagedBulkInsert implements PskBulkInsert {
  readonly #ctx: SqlContext;
  readonly #context: InsertContext;
  readonly #makeStage: () => PskStage;
  readonly #batches = new Set<string>();
  #stage: PskStage | undefined;
  #staged = 0;
  /** The columns being sealed on the worker while the main thread does the next ones. */
  #sealing: Sealing | undefined;
  #lastMs = Number.NaN;
  #lastIso = '';
  #finished = false;

  constructor(ctx: SqlContext, context: InsertContext, makeStage: () => PskStage) {
    this.#ctx = ctx;
    this.#context = context;
    this.#makeStage = makeStage;
  }

  async add(c: PskColumns): Promise<void> {
    if (this.#finished) throw new ScsError('SCS_STORE_FAILED', 'bulkInsert: add after finish');
    try {
      checkColumns(c, this.#batches);
    } catch (e) {
      c.pps.fill(0);
      throw e;
    }
    if (c.count === 0) return;
    const createdAt = new Array<string>(c.count);
    const plains = new Array<Buffer>(c.count);
    for (let i = 0; i < c.count; i++) {
      createdAt[i] = this.#iso(c.createdAt[i] as number);
      plains[i] = c.pps.subarray(i * PPS_LENGTH, (i + 1) * PPS_LENGTH);
    }
    // With the native AES-GCM sealMany is done when it returns; without it, **(choice)** one
    // batch on the seal worker at a time: a batch sent while the worker is busy
    // starts a second worker thread (~25 MB more at the peak, which an import of a million next
    // to SQLite's sorter cannot spare under 300 MB). The worker seals this slice while the main
    // thread stages the one before and decodes the next.
    const previous = this.#sealing;
    this.#sealing = undefined;
    const sealed = previous === undefined ? undefined : await this.#sealed(previous);
    // The PPS are packed into the worker's own buffer before sealMany first awaits.
    const blobs = this.#ctx.box.sealMany(plains, c.pids);
    blobs.catch(() => undefined); // awaited by the next add or finish; never unhandled
    this.#sealing = { columns: c, createdAt, blobs };
    if (previous !== undefined && sealed !== undefined) this.#append(previous, sealed);
  }

  async finish(): Promise<InsertResult> {
    if (this.#finished) throw new ScsError('SCS_STORE_FAILED', 'bulkInsert: finish called twice');
    this.#finished = true;
    const last = this.#sealing;
    this.#sealing = undefined;
    if (last !== undefined) this.#append(last, await this.#sealed(last));
    const stage = this.#stage;
    if (stage === undefined) return { inserted: 0, duplicates: [], conflicts: [] };
    const ctx = this.#ctx;
    const now = new Date().toISOString();
    await ctx.q
      .insertInto('batches')
      .values([...this.#batches].map((name) => ({ name, created_at: now, profile: null })))
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    try {
      const { inserted, maxIdBefore } = stage.insert(now);
      const duplicates: Pid[] = [];
      const conflicts: Pid[] = [];
      if (inserted < this.#staged) this.#compareSkipped(stage, maxIdBefore, inserted, duplicates, conflicts);
      // A few entries at a time: the audit buffer keeps each entry's PIDs as one joined string,
      // so the million PID strings split here can be collected as it goes.
      let entries: AuditEntryInput[] = [];
      const end = maxIdBefore + inserted;
      for (let from = maxIdBefore; from < end; from += AUDIT_PIDS_PER_ENTRY) {
        for (const g of stage.insertedGroups(from, Math.min(from + AUDIT_PIDS_PER_ENTRY, end))) {
          const pids = g.pids.split(',') as Pid[];
          entries.push({
            actor: this.#context.actor,
            action: `psk.${this.#context.source}`,
            pids,
            detail: { ...this.#context.detail, batch: g.batch, count: pids.length },
          });
        }
        if (entries.length >= AUDIT_ENTRIES_PER_APPEND) {
          await appendAudit(ctx, entries);
          entries = [];
        }
      }
      await appendAudit(ctx, entries);
      stage.drop();
      this.#stage = undefined;
      return { inserted, duplicates, conflicts };
    } finally {
      stage.end();
    }
  }

  /** The sealed PPS of `s`, once the worker is done; its plaintext is zeroed either way. */
  async #sealed(s: Sealing): Promise<Buffer[]> {
    try {
      return await s.blobs;
    } finally {
      s.columns.pps.fill(0);
    }
  }

  #append(s: Sealing, blobs: Buffer[]): void {
    this.#stage ??= this.#makeStage();
    const c = s.columns;
    this.#stage.append({
      count: c.count,
      pids: c.pids,
      pps: blobs,
      batches: c.batches,
      states: c.states,
      createdAt: s.createdAt,
    });
    this.#staged += c.count;
  }

  /** Only when some rows were skipped: which, and whether any offered another PPS. */
  #compareSkipped(stage: PskStage, maxIdBefore: number, inserted: number, dup: Pid[], conflicts: Pid[]): void {
    const box = this.#ctx.box;
    const samePps = (a: Buffer, b: Buffer, pid: string): boolean => {
      const x = box.open(a, pid);
      const y = box.open(b, pid);
      try {
        return x.equals(y);
      } finally {
        x.fill(0);
        y.fill(0);
      }
    };
    const existing = stage.existing(maxIdBefore);
    const known = new Set<string>();
    for (const r of existing) {
      known.add(r.pid);
      dup.push(r.pid as Pid);
      if (!samePps(r.offered, r.stored, r.pid)) conflicts.push(r.pid as Pid);
    }
    if (inserted + existing.length === this.#staged) return;
    // Repeated within what was added: the first one of each PID was inserted.
    let first: { readonly pid: string; readonly pps: Buffer } | undefined;
    for (const r of stage.repeated()) {
      if (known.has(r.pid)) continue;
      if (first?.pid !== r.pid) {
        first = r;
        continue;
      }
      dup.push(r.pid as Pid);
      if (!samePps(first.pps, r.pps, r.pid)) conflicts.push(r.pid as Pid);
    }
  }

  /** Consecutive rows nearly always share a creation time (one per generated chunk). */
  #iso(ms: number): string {
    if (ms !== this.#lastMs) {
      const d = new Date(ms);
      if (Number.isNaN(d.getTime())) throw new ScsError('SCS_STORE_FAILED', 'bulkInsert: invalid creation time');
      this.#lastIso = d.toISOString();
      this.#lastMs = ms;
    }
    return this.#lastIso;
  }
}
