import { sql, type DatabaseConnection, type Kysely, type QueryResult, type Selectable } from 'kysely';
import type { SecretBox } from '../../crypto/envelope.ts';
import { isScsError, ScsError } from '../../errors.ts';
import { formatPid, type Pid } from '../../psk/pid.ts';
import type { Pps } from '../../psk/pps.ts';
import { Secret } from '../../secret.ts';
import { checkBatchName } from '../batch.ts';
import { chainHash, parseDetail, verifyChain, type StoredChainEntry } from '../audit-chain.ts';
import { canTransition, emptyCounts, isPskState, PSK_STATES, type PskState } from '../lifecycle.ts';
import type {
  AuditDetail,
  AuditEntry,
  AuditEntryInput,
  AuditFilter,
  AuditLog,
  AuditVerifyResult,
  BatchRepository,
  BatchRow,
  BatchStats,
  InsertContext,
  InsertResult,
  IterateOptions,
  NewPsk,
  PageOptions,
  PskBulkInsert,
  PskFilter,
  PskPage,
  PskRepository,
  PskRow,
  PskTransition,
  PskWithPps,
  ReleaseContext,
  RevealContext,
  Store,
} from '../store.ts';
import { hotFirst, runHot, slot } from './hot-query.ts';
import { bulkInsert, type PskStage } from './bulk-insert.ts';
import { psksPages } from './psk-pages.ts';
import type { AuditLogTable, PsksTable, StoreDb } from './schema.ts';
import { sqlProvisioning } from '../provisioning/sql-provisioning.ts';
import { SqlTokens } from '../tokens/sql-tokens.ts';
import { SqlTransfers } from '../transfers/sql-transfers.ts';
import { SqlPki } from '../pki/sql-pki.ts';

/** A row for `psks` as written (pps already sealed). */
export interface PskInsertRow {
  readonly pid: string;
  readonly pps: Buffer;
  readonly batch: string;
  readonly state: PskState;
  readonly created_at: string;
  readonly updated_at: string;
}

/** What differs between engines; everything else is portable SQL built by kysely. */
export interface SqlEngine {
  readonly name: 'sqlite' | 'postgres';
  /**
   * Whether reads that precede a write must lock their rows (`FOR UPDATE`). PostgreSQL: yes,
   * writers run concurrently. SQLite: no, a write transaction (BEGIN IMMEDIATE) already
   * excludes every other writer.
   */
  readonly lockRows: boolean;
  /**
   * Optional hot path for bulk inserts: inserts `rows` (distinct PIDs; ON CONFLICT (pid) DO
   * NOTHING) and returns the PIDs skipped because they already existed. Called only inside a
   * write transaction, on its connection.
   */
  readonly insertPsks?: (rows: readonly PskInsertRow[]) => string[];
  /**
   * Optional staging for psks.bulkInsert (src/store/sql/bulk-insert.ts): a temporary table on
   * the transaction's connection. Called only inside a write transaction.
   */
  readonly stagePsks?: () => PskStage;
  /**
   * Optional hot path for psks.pages with a target state: the page's one UPDATE (rows with ids
   * `firstId..lastId` still in `from`, of `batch` if given, moved to `to`), returning the number
   * of rows it changed. Called only inside a write transaction, on its connection, with states
   * psk-pages.ts has already checked (src/store/lifecycle.ts).
   */
  readonly movePskPage?: (move: PskPageMove) => number;
  /**
   * Optional: `sql` prepared once on the engine's one connection, for hot statements run
   * inside a write transaction (hot-query.ts). SQLite only: the transaction holds that
   * connection, and each statement runs to completion synchronously.
   */
  readonly prepareHot?: (sql: string) => HotStatement;
  /** Releases the connection(s) after the Kysely instance is destroyed. */
  readonly close?: () => Promise<void>;
}

/** A statement prepared by SqlEngine.prepareHot: its result as kysely's driver gives it. */
export interface HotStatement {
  run(params: readonly unknown[]): QueryResult<unknown>;
}

/** One page's state change (SqlEngine.movePskPage). */
export interface PskPageMove {
  readonly from: PskState;
  readonly to: PskState;
  readonly priorState: PskState | null;
  readonly updatedAt: string;
  readonly firstId: number;
  readonly lastId: number;
  readonly batch?: string;
}

/** PIDs listed per audit entry: a million PSKs cost a thousand entries, and every PID appears. */
export const AUDIT_PIDS_PER_ENTRY = 1000;
/** PIDs per SELECT/UPDATE ... IN (...) statement: far below SQLite's 32766 and PostgreSQL's 65535 parameters. */
const IN_CHUNK = 500;
/** Rows per multi-row INSERT on the portable path: 8 columns x 500 = 4000 parameters. */
const INSERT_CHUNK = 500;
const LIST_DEFAULT = 1000;
const LIST_MAX = 10_000;
const ITERATE_CHUNK = 1000;
/** PSKs sealed per worker round trip inside insertMany (the first slice is shorter). */
const SEAL_SLICE = 5000;
const FIRST_SEAL_SLICE = 2048;
const AUDIT_LIST_DEFAULT = 100;
/** States a PSK may enter the database in; in_use needs a running job and a prior state. */
export const INITIAL_STATES: readonly PskState[] = ['available', 'exported', 'consumed', 'revoked', 'transferred'];

/** What repositories in other files (src/store/tokens) build on. */
export type SqlContext = Context;

interface Context {
  /** Kysely instance able to start transactions. */
  readonly root: Kysely<StoreDb>;
  /** Where queries go: `root`, or the open transaction. */
  readonly q: Kysely<StoreDb>;
  readonly inTx: boolean;
  readonly engine: SqlEngine;
  readonly box: SecretBox;
  /** The open transaction's audit entries not yet written (see appendAudit); set by write(). */
  readonly audit?: AuditBuffer;
  /**
   * SQLite only: the open transaction's connection, on which hot statements run directly
   * (hot-query.ts) instead of through kysely's executor, whose per-statement layers (a new
   * executor, the connection mutex, plugin passes, four promises) cost more than most of the
   * provisioning path's statements themselves. Set by write() for the transaction's lifetime.
   */
  readonly conn?: DatabaseConnection;
}

/** Every repository of a Store: what SqlStore and TxStore share. */
type Repositories = Omit<Store, 'engine' | 'transaction' | 'close'>;

/**
 * The repositories bound to `ctx` (the store itself or one open transaction). The one place
 * they are wired: SqlStore and TxStore both take them from here, so a repository added to the
 * Store cannot be present on one and missing on the other (it once was, and a transaction lost
 * the API-token repository).
 */
function repositories(ctx: Context): Repositories {
  return {
    psks: new SqlPsks(ctx),
    batches: new SqlBatches(ctx),
    audit: new SqlAudit(ctx),
    ...sqlProvisioning(ctx, (c) => new TxStore(c)),
    tokens: new SqlTokens(ctx),
    transfers: new SqlTransfers(ctx),
    pki: new SqlPki(ctx),
  };
}

/** A Store whose repositories are bound to one context; the two subclasses differ only in transaction/close. */
abstract class BoundStore implements Store {
  readonly engine: 'sqlite' | 'postgres';
  readonly psks: Repositories['psks'];
  readonly batches: Repositories['batches'];
  readonly audit: Repositories['audit'];
  readonly profiles: Repositories['profiles'];
  readonly devices: Repositories['devices'];
  readonly jobs: Repositories['jobs'];
  readonly escrow: Repositories['escrow'];
  readonly ca: Repositories['ca'];
  readonly pskBindings: Repositories['pskBindings'];
  readonly tokens: Repositories['tokens'];
  readonly transfers: Repositories['transfers'];
  readonly pki: Repositories['pki'];

  constructor(ctx: Context) {
    this.engine = ctx.engine.name;
    ({
      psks: this.psks,
      batches: this.batches,
      audit: this.audit,
      profiles: this.profiles,
      devices: this.devices,
      jobs: this.jobs,
      escrow: this.escrow,
      ca: this.ca,
      pskBindings: this.pskBindings,
      tokens: this.tokens,
      transfers: this.transfers,
      pki: this.pki,
    } = repositories(ctx));
  }

  abstract transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  abstract close(): Promise<void>;
}

/**
 * The Store over any Kysely dialect. Adapters open the connection, run their migrations and
 * unwrap the data keys, then hand over a Kysely instance, an SqlEngine and a SecretBox.
 */
export class SqlStore extends BoundStore {
  readonly #ctx: Context;
  #closed = false;

  constructor(root: Kysely<StoreDb>, engine: SqlEngine, box: SecretBox) {
    const ctx: Context = { root, q: root, inTx: false, engine, box };
    super(ctx);
    this.#ctx = ctx;
  }

  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    return write(this.#ctx, (ctx) => fn(new TxStore(ctx)));
  }

  /**
   * The Kysely instance and engine under a store this module opened, for whole-database tools
   * (`db migrate` copies every table); undefined for any other Store.
   */
  static rawOf(store: Store): { readonly db: Kysely<StoreDb>; readonly engine: SqlEngine } | undefined {
    return store instanceof SqlStore ? { db: store.#ctx.root, engine: store.#ctx.engine } : undefined;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#ctx.root.destroy();
    await this.#ctx.engine.close?.();
    await this.#ctx.box.close();
  }
}

/** The Store handed to a transaction callback: same repositories, bound to the transaction. */
class TxStore extends BoundStore {
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    return fn(this);
  }

  close(): Promise<void> {
    return Promise.reject(new ScsError('SCS_STORE_FAILED', 'a transaction cannot close the store'));
  }
}

/**
 * Runs fn in a write transaction (joining the current one if any); driver errors become
 * SCS_STORE_FAILED. The audit entries fn appended are written just before COMMIT.
 */
export async function write<T>(ctx: Context, fn: (ctx: Context) => Promise<T>): Promise<T> {
  if (ctx.inTx) return fn(ctx);
  return guard(
    ctx.root.transaction().execute(async (trx) => {
      // The transaction holds SQLite's one connection until it ends, and better-sqlite3 runs each
      // statement to completion synchronously: a statement run on it directly is one of this
      // transaction's, in the order issued. PostgreSQL keeps kysely's path (its query log counts
      // statements, and a pooled connection has its own queue).
      const conn =
        ctx.engine.name === 'sqlite' ? await trx.getExecutor().provideConnection((c) => Promise.resolve(c)) : undefined;
      const tx: Context = {
        ...ctx,
        q: trx,
        inTx: true,
        audit: new AuditBuffer(),
        ...(conn === undefined ? {} : { conn }),
      };
      const out = await fn(tx);
      await flushAudit(tx);
      return out;
    }),
  );
}

export async function guard<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (isScsError(e)) throw e;
    // Driver messages name tables and constraints, never bound values; PPS columns are sealed anyway.
    throw new ScsError('SCS_STORE_FAILED', `database error: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
}

let isoMs = -1;
let isoText = '';

/**
 * The current time as stored (ISO-8601 UTC, milliseconds). The text of the last millisecond
 * is kept: hundreds of jobs write in the same millisecond, and formatting a Date was a
 * visible part of an audit append.
 */
export function nowIso(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoText = new Date(ms).toISOString();
    isoMs = ms;
  }
  return isoText;
}

export function toDate(v: string | Date): Date {
  return v instanceof Date ? v : new Date(v);
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function checkLimit(value: number | undefined, fallback: number, max: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `${what} must be a whole number 1..${max}, got ${value}`);
  }
  return value;
}

function checkState(state: string, what: string): asserts state is PskState {
  if (!isPskState(state)) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `${what} "${state}" is not one of ${PSK_STATES.join(', ')}`);
  }
}

function toRow(r: Omit<Selectable<PsksTable>, 'pps'>): PskRow {
  return {
    id: Number(r.id),
    pid: r.pid as Pid,
    batch: r.batch,
    state: r.state,
    priorState: r.prior_state,
    deviceUuid: r.device_uuid,
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
  };
}

const ROW_COLUMNS = [
  'id',
  'pid',
  'batch',
  'state',
  'prior_state',
  'device_uuid',
  'created_at',
  'updated_at',
] as const satisfies readonly (keyof PsksTable)[];

function openPps(ctx: Context, pid: string, sealed: Buffer): Secret<Pps> {
  return new Secret(ctx.box.open(sealed, pid).toString('latin1') as Pps);
}

// ---------------------------------------------------------------------------------------------
// PSKs

class SqlPsks implements PskRepository {
  readonly #ctx: Context;

  constructor(ctx: Context) {
    this.#ctx = ctx;
  }

  async insertMany(rows: readonly NewPsk[], context: InsertContext): Promise<InsertResult> {
    const ctx = this.#ctx;
    if (rows.length === 0) return { inserted: 0, duplicates: [], conflicts: [] };
    const batches = new Set<string>();
    const first = new Map<string, NewPsk>();
    const duplicates: Pid[] = [];
    const conflicts: Pid[] = [];
    for (const row of rows) {
      if (!batches.has(row.batch)) {
        checkBatchName(row.batch);
        batches.add(row.batch);
      }
      if (row.state !== undefined) {
        checkState(row.state, 'initial state');
        if (!INITIAL_STATES.includes(row.state)) {
          throw new ScsError('SCS_PSK_STATE_INVALID', `a PSK cannot enter the database as ${row.state}`);
        }
      }
      const earlier = first.get(row.pid);
      if (earlier === undefined) first.set(row.pid, row);
      else {
        duplicates.push(row.pid);
        if (earlier.pps.reveal() !== row.pps.reveal()) conflicts.push(row.pid);
      }
    }
    const now = nowIso();
    // Key order halves the cost of inserting into the PID index (each B-tree page is visited
    // once per slice, while it is hot). A plain sort of the strings avoids a JS comparator.
    const offered = [...first.keys()].sort().map((pid) => first.get(pid) as NewPsk);
    const sealSlice = async (slice: readonly NewPsk[]): Promise<PskInsertRow[]> => {
      const blobs = await ctx.box.sealMany(
        slice.map((r) => r.pps.reveal()),
        slice.map((r) => r.pid),
      );
      return slice.map((row, i) => ({
        pid: row.pid,
        pps: blobs[i] as Buffer,
        batch: row.batch,
        state: row.state ?? 'available',
        created_at: row.createdAt?.toISOString() ?? now,
        updated_at: now,
      }));
    };
    // A short first slice: the inserts wait for it, every later slice is sealed while the one
    // before it is inserted.
    const head = Math.min(FIRST_SEAL_SLICE, offered.length);
    const slices = [offered.slice(0, head), ...chunks(offered.slice(head), SEAL_SLICE)];
    // Sealing slice k+1 (worker thread) overlaps inserting slice k (database), so one big
    // transaction costs about the larger of the two, not their sum.
    let next: Promise<PskInsertRow[]> | undefined = slices[0] ? sealSlice(slices[0]) : undefined;
    next?.catch(() => undefined);
    return write(ctx, async (tx) => {
      await tx.q
        .insertInto('batches')
        .values([...batches].map((name) => ({ name, created_at: now, profile: null })))
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      // The common case inserts every row; PIDs are only collected when some were skipped.
      let insertedCount = 0;
      const existing: string[] = [];
      const byBatch = new Map<string, Pid[]>();
      for (let i = 0; next !== undefined; i++) {
        const rows: PskInsertRow[] = await next;
        const following = slices[i + 1];
        next = following === undefined ? undefined : sealSlice(following);
        next?.catch(() => undefined); // awaited on the next turn; never an unhandled rejection
        const skippedPids = await insertRows(tx, rows);
        insertedCount += rows.length - skippedPids.length;
        const skipped = skippedPids.length === 0 ? undefined : new Set(skippedPids);
        for (const r of rows) {
          if (skipped?.has(r.pid)) {
            existing.push(r.pid);
            continue;
          }
          let list = byBatch.get(r.batch);
          if (list === undefined) byBatch.set(r.batch, (list = []));
          list.push(r.pid as Pid);
        }
      }
      for (const part of chunks(existing, IN_CHUNK)) {
        const stored = await tx.q.selectFrom('psks').select(['pid', 'pps']).where('pid', 'in', part).execute();
        for (const s of stored) {
          duplicates.push(s.pid as Pid);
          const offered = first.get(s.pid);
          if (offered !== undefined && openPps(tx, s.pid, s.pps).reveal() !== offered.pps.reveal()) {
            conflicts.push(s.pid as Pid);
          }
        }
      }
      const entries: AuditEntryInput[] = [];
      for (const [batch, pids] of byBatch) {
        for (const part of chunks(pids, AUDIT_PIDS_PER_ENTRY)) {
          entries.push({
            actor: context.actor,
            action: `psk.${context.source}`,
            pids: part,
            detail: { ...context.detail, batch, count: part.length },
          });
        }
      }
      await appendAudit(tx, entries);
      return { inserted: insertedCount, duplicates, conflicts };
    });
  }

  bulkInsert(context: InsertContext): PskBulkInsert {
    return bulkInsert(this.#ctx, context, (rows) => this.insertMany(rows, context));
  }

  async get(pid: Pid): Promise<PskRow | undefined> {
    const q = this.#ctx.q;
    const r = await guard(
      hotFirst(this.#ctx, 'psks.get', [pid], () => q.selectFrom('psks').select(ROW_COLUMNS).where('pid', '=', slot(0))),
    );
    return r === undefined ? undefined : toRow(r);
  }

  async reveal(pid: Pid, context: RevealContext): Promise<Secret<Pps>> {
    const sealed = await write(this.#ctx, async (tx) => {
      const r = await hotFirst(tx, 'psks.reveal', [pid], () =>
        tx.q.selectFrom('psks').select(['pid', 'pps']).where('pid', '=', slot(0)),
      );
      if (r === undefined) throw notFound(pid);
      await appendAudit(tx, [
        { actor: context.actor, action: 'psk.reveal', pids: [pid], detail: { purpose: context.purpose } },
      ]);
      return r.pps;
    });
    return openPps(this.#ctx, pid, sealed);
  }

  async list(filter: PskFilter = {}): Promise<PskRow[]> {
    const limit = checkLimit(filter.limit, LIST_DEFAULT, LIST_MAX, 'limit');
    const rows = await guard(filtered(this.#ctx.q, filter).select(ROW_COLUMNS).orderBy('id').limit(limit).execute());
    return rows.map(toRow);
  }

  async *iterateWithPps(options: IterateOptions, context: RevealContext): AsyncGenerator<PskWithPps> {
    const ctx = this.#ctx;
    const chunkSize = checkLimit(options.chunkSize, ITERATE_CHUNK, ITERATE_CHUNK, 'chunkSize');
    let remaining =
      options.limit === undefined ? Infinity : checkLimit(options.limit, 1, Number.MAX_SAFE_INTEGER, 'limit');
    let afterId = options.afterId;
    while (remaining > 0) {
      const take = Math.min(chunkSize, remaining);
      const page = await write(ctx, async (tx) => {
        const rows = await filtered(tx.q, afterId === undefined ? options : { ...options, afterId })
          .select([...ROW_COLUMNS, 'pps'])
          .orderBy('id')
          .limit(take)
          .execute();
        if (rows.length > 0) {
          await appendAudit(tx, [
            {
              actor: context.actor,
              action: 'psk.reveal',
              pids: rows.map((r) => r.pid as Pid),
              detail: { purpose: context.purpose, count: rows.length },
            },
          ]);
        }
        return rows;
      });
      for (const r of page) yield { ...toRow(r), pps: openPps(ctx, r.pid, r.pps) };
      const last = page.at(-1);
      if (last === undefined || page.length < take) return;
      afterId = Number(last.id);
      remaining -= page.length;
    }
  }

  pages(options: PageOptions, context: RevealContext): AsyncIterable<PskPage> {
    return psksPages(this.#ctx, options, context);
  }

  async transition(change: PskTransition): Promise<void> {
    checkState(change.to, 'target state');
    if (change.from.length === 0)
      throw new ScsError('SCS_ARGUMENT_INVALID', 'a transition needs at least one from state');
    for (const s of change.from) checkState(s, 'from state');
    const detail: Record<string, string> = {};
    if (change.reason !== undefined) detail.reason = change.reason;
    if (change.deviceUuid !== undefined) detail.deviceUuid = change.deviceUuid;
    await move(this.#ctx, change.pids, change.actor, detail, change.deviceUuid, (row) => {
      if (!change.from.includes(row.state) || !canTransition(row.state, change.to)) {
        throw stateError(row.pid, row.state, change.to, change.from);
      }
      return change.to;
    });
  }

  async release(pids: readonly Pid[], context: ReleaseContext): Promise<void> {
    const detail: Record<string, string> = { release: 'failed attempt' };
    if (context.reason !== undefined) detail.reason = context.reason;
    await move(this.#ctx, pids, context.actor, detail, undefined, (row) => {
      if (row.state !== 'in_use') throw stateError(row.pid, row.state, row.prior_state ?? 'available', ['in_use']);
      return row.prior_state ?? 'available';
    });
  }

  async countByState(filter: { readonly batch?: string } = {}): Promise<Record<PskState, number>> {
    const ctx = this.#ctx;
    if (filter.batch !== undefined) await requireBatch(ctx, filter.batch);
    let q = ctx.q.selectFrom('psks').select((eb) => ['state', eb.fn.countAll().as('n')]);
    if (filter.batch !== undefined) q = q.where('batch', '=', filter.batch);
    const rows = await guard(q.groupBy('state').execute());
    const counts = emptyCounts();
    for (const r of rows) if (isPskState(r.state)) counts[r.state] = Number(r.n);
    return counts;
  }
}

function filtered(q: Kysely<StoreDb>, filter: PskFilter) {
  let s = q.selectFrom('psks');
  if (filter.state !== undefined) {
    const states: readonly PskState[] = typeof filter.state === 'string' ? [filter.state] : filter.state;
    for (const st of states) checkState(st, 'state filter');
    s = s.where('state', 'in', states);
  }
  if (filter.batch !== undefined) s = s.where('batch', '=', filter.batch);
  if (filter.afterId !== undefined) s = s.where('id', '>', filter.afterId);
  return s;
}

function selectMove(ctx: Context, pids: readonly string[]) {
  return ctx.q.selectFrom('psks').select(['pid', 'state', 'prior_state']).where('pid', 'in', pids);
}

/** Inserts rows with distinct PIDs, skipping PIDs that exist; returns the skipped PIDs. */
async function insertRows(ctx: Context, rows: readonly PskInsertRow[]): Promise<string[]> {
  if (ctx.engine.insertPsks) return ctx.engine.insertPsks(rows);
  const skipped: string[] = [];
  for (const part of chunks(rows, INSERT_CHUNK)) {
    const got = await ctx.q
      .insertInto('psks')
      .values(part.map((r) => ({ ...r, prior_state: null, device_uuid: null })))
      .onConflict((oc) => oc.column('pid').doNothing())
      .returning('pid')
      .execute();
    if (got.length === part.length) continue;
    const inserted = new Set(got.map((g) => g.pid));
    for (const r of part) if (!inserted.has(r.pid)) skipped.push(r.pid);
  }
  return skipped;
}

interface MoveRow {
  readonly pid: string;
  readonly state: PskState;
  readonly prior_state: PskState | null;
}

/**
 * The one place PSK states change. In one transaction, per chunk of PIDs: read the rows (locked
 * on PostgreSQL), let `decide` name each target state or throw, then update grouped by
 * (from, to) with `AND state = from` so a concurrent change is caught (row count differs) rather
 * than overwritten; audit one entry per group of ≤1000 PIDs.
 */
async function move(
  ctx: Context,
  pids: readonly Pid[],
  actor: string,
  detail: AuditDetail,
  deviceUuid: string | undefined,
  decide: (row: MoveRow) => PskState,
): Promise<void> {
  const unique = [...new Set(pids)];
  if (unique.length === 0) return;
  await write(ctx, async (tx) => {
    const now = nowIso();
    const groups = new Map<string, { from: PskState; to: PskState; pids: Pid[] }>();
    for (const part of chunks(unique, IN_CHUNK)) {
      // One PID (every hello, every job's end) is a hot statement: compiled once (hot-query.ts).
      const rows =
        part.length === 1
          ? (
              await runHot(tx, 'psks.moveRead', part, () => {
                const one = tx.q.selectFrom('psks').select(['pid', 'state', 'prior_state']).where('pid', '=', slot(0));
                return tx.engine.lockRows ? one.forUpdate() : one;
              })
            ).rows
          : await (tx.engine.lockRows ? selectMove(tx, part).forUpdate() : selectMove(tx, part)).execute();
      if (rows.length !== part.length) {
        const found = new Set(rows.map((r) => r.pid));
        const missing = part.find((p) => !found.has(p));
        throw notFound(missing ?? '');
      }
      const partGroups = new Map<string, { from: PskState; to: PskState; pids: Pid[] }>();
      for (const row of rows) {
        const to = decide(row);
        const key = `${row.state}>${to}`;
        const g = partGroups.get(key) ?? { from: row.state, to, pids: [] };
        g.pids.push(row.pid as Pid);
        partGroups.set(key, g);
      }
      for (const [key, g] of partGroups) {
        const set = {
          state: g.to,
          prior_state: g.to === 'in_use' ? g.from : null,
          updated_at: now,
          ...(deviceUuid === undefined ? {} : { device_uuid: deviceUuid }),
        };
        // Without statistics SQLite's planner picks the state index here and walks every row in
        // that state (a million for one hello); unary + takes the column off the index so the
        // unique PID index is used (sqlite.org/optoverview.html, "Disqualifying WHERE clause
        // terms using unary-+"). PostgreSQL has no unary + on text and needs no hint.
        const stateColumn = tx.engine.name === 'sqlite' ? sql<PskState>`+state` : sql<PskState>`state`;
        const changed =
          g.pids.length === 1
            ? (
                await runHot(
                  tx,
                  `psks.moveUpdate:${deviceUuid !== undefined}`,
                  [...Object.values(set), g.pids[0], g.from],
                  () =>
                    tx.q
                      .updateTable('psks')
                      .set(Object.fromEntries(Object.keys(set).map((c, i) => [c, slot(i)])) as never)
                      .where('pid', '=', slot(Object.keys(set).length))
                      .where(stateColumn, '=', slot(Object.keys(set).length + 1)),
                )
              ).numAffectedRows
            : (
                await tx.q
                  .updateTable('psks')
                  .set(set)
                  .where('pid', 'in', g.pids)
                  .where(stateColumn, '=', g.from)
                  .executeTakeFirst()
              ).numUpdatedRows;
        if (Number(changed) !== g.pids.length) {
          throw new ScsError(
            'SCS_PSK_STATE_INVALID',
            `PSKs changed state concurrently while moving ${g.from} -> ${g.to}`,
          );
        }
        const all = groups.get(key) ?? { from: g.from, to: g.to, pids: [] };
        all.pids.push(...g.pids);
        groups.set(key, all);
      }
    }
    const entries: AuditEntryInput[] = [];
    for (const g of groups.values()) {
      for (const part of chunks(g.pids, AUDIT_PIDS_PER_ENTRY)) {
        entries.push({ actor, action: 'psk.state', pids: part, detail: { ...detail, from: g.from, to: g.to } });
      }
    }
    await appendAudit(tx, entries);
  });
}

function notFound(pid: Pid | string): ScsError {
  return new ScsError('SCS_PSK_NOT_FOUND', `no PSK with PID ${formatPid(pid as Pid)}`, { details: { pid } });
}

function stateError(pid: string, from: PskState, to: PskState, expected: readonly PskState[]): ScsError {
  const why = canTransition(from, to)
    ? `this operation expects ${expected.join(' or ')}`
    : `${from} -> ${to} is not an allowed transition`;
  return new ScsError(
    'SCS_PSK_STATE_INVALID',
    `PSK ${formatPid(pid as Pid)} is ${from}; cannot change it to ${to} (${why})`,
    { details: { pid, from, to } },
  );
}

// ---------------------------------------------------------------------------------------------
// Batches

async function requireBatch(ctx: Context, name: string): Promise<void> {
  const b = await guard(ctx.q.selectFrom('batches').select('name').where('name', '=', name).executeTakeFirst());
  if (b === undefined) {
    throw new ScsError('SCS_BATCH_NOT_FOUND', `no batch named "${name}"`, { details: { batch: name } });
  }
}

class SqlBatches implements BatchRepository {
  readonly #ctx: Context;

  constructor(ctx: Context) {
    this.#ctx = ctx;
  }

  async get(name: string): Promise<BatchRow | undefined> {
    const q = this.#ctx.q;
    const r = await guard(
      hotFirst(this.#ctx, 'batches.get', [name], () => q.selectFrom('batches').selectAll().where('name', '=', slot(0))),
    );
    return r === undefined ? undefined : { name: r.name, createdAt: toDate(r.created_at), profile: r.profile };
  }

  async list(): Promise<BatchStats[]> {
    const q = this.#ctx.q;
    const [batches, counts] = await guard(
      Promise.all([
        q.selectFrom('batches').selectAll().orderBy('created_at').orderBy('name').execute(),
        q
          .selectFrom('psks')
          .select((eb) => ['batch', 'state', eb.fn.countAll().as('n')])
          .groupBy(['batch', 'state'])
          .execute(),
      ]),
    );
    const byBatch = new Map<string, Record<PskState, number>>();
    for (const c of counts) {
      const m = byBatch.get(c.batch) ?? emptyCounts();
      if (isPskState(c.state)) m[c.state] = Number(c.n);
      byBatch.set(c.batch, m);
    }
    return batches.map((b) => {
      const c = byBatch.get(b.name) ?? emptyCounts();
      return {
        name: b.name,
        createdAt: toDate(b.created_at),
        profile: b.profile,
        counts: c,
        total: Object.values(c).reduce((a, n) => a + n, 0),
      };
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Audit log

/**
 * Audit batching: the entries of one transaction, chained in memory from the head read at the
 * first append, written by flushAudit with one head update. A transaction that appends 50
 * entries (group commit joins many jobs' writes into one) costs one head read, a few multi-row
 * inserts and one head update instead of 150 statements; the chain and its hashes are the same
 * as with one append at a time.
 */
export class AuditBuffer {
  /** The chain head as this transaction has extended it; undefined until the first append read it. */
  head: { seq: number; hash: string } | undefined;
  rows: AuditLogTable[] = [];
}

/** Rows per insert statement: fixed sizes, so the prepared-statement cache holds 4 texts, not 100. */
const AUDIT_INSERT_SIZES = [64, 16, 4, 1] as const;

/**
 * Writes the transaction's buffered audit entries and the new chain head. write() calls it
 * before COMMIT; readers of audit_log inside a transaction call it first, so they see them.
 */
export async function flushAudit(ctx: Context): Promise<void> {
  const buffer = ctx.audit;
  if (buffer === undefined || buffer.rows.length === 0 || buffer.head === undefined) return;
  const rows = buffer.rows;
  buffer.rows = [];
  let at = 0;
  for (const size of AUDIT_INSERT_SIZES) {
    while (rows.length - at >= size) {
      // Compiled once per size (hot-query.ts): the values of `size` rows in column order.
      const args: unknown[] = [];
      for (const r of rows.slice(at, at + size)) args.push(r.seq, r.at, r.actor, r.action, r.pids, r.detail, r.hash);
      await runHot(ctx, `audit.insert:${size}`, args, () =>
        ctx.q.insertInto('audit_log').values(
          Array.from({ length: size }, (_, i) => ({
            seq: slot(i * 7),
            at: slot(i * 7 + 1),
            actor: slot(i * 7 + 2),
            action: slot(i * 7 + 3),
            pids: slot(i * 7 + 4),
            detail: slot(i * 7 + 5),
            hash: slot(i * 7 + 6),
          })),
        ),
      );
      at += size;
    }
  }
  await runHot(ctx, 'audit.head', [buffer.head.seq, buffer.head.hash], () =>
    ctx.q
      .updateTable('audit_head')
      .set({ seq: slot(0), hash: slot(1) })
      .where('id', '=', 1),
  );
}

/**
 * Appends entries to the chain inside the caller's write transaction. Concurrency: the head row
 * is read with FOR UPDATE on PostgreSQL (SQLite's BEGIN IMMEDIATE already serializes writers),
 * so two writers cannot both extend the same head; the second waits until the first commits
 * and then chains onto its hash. seq is the audit_log primary key: a lost race could at worst
 * fail on the key, never fork the chain. In a transaction opened by write() the rows wait in
 * its AuditBuffer until just before COMMIT (the head stays locked meanwhile, as before).
 */
export async function appendAudit(
  ctx: Context,
  inputs: readonly AuditEntryInput[],
  /** Receives the entries as appended (audit.append returns its one); other callers read none back. */
  out?: AuditEntry[],
): Promise<void> {
  if (inputs.length === 0) return;
  if (!ctx.inTx) throw new ScsError('SCS_STORE_FAILED', 'audit append outside a transaction');
  const buffer = ctx.audit;
  let head = buffer?.head;
  if (head === undefined) {
    const row = await hotFirst(ctx, 'audit.readHead', [], () => {
      const headQuery = ctx.q.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1);
      return ctx.engine.lockRows ? headQuery.forUpdate() : headQuery;
    });
    if (row === undefined) throw new ScsError('SCS_STORE_FAILED', 'the audit_head row is missing');
    head = { seq: Number(row.seq), hash: row.hash };
  }
  let seq = head.seq;
  let prev = head.hash;
  const at = nowIso();
  // The millisecond `at` was made from (nowIso keeps it): a Date from a number, not parsed back.
  const atMs = isoMs;
  const rows: AuditLogTable[] = [];
  for (const input of inputs) {
    seq++;
    const pids = input.pids ?? [];
    const detail = input.detail ?? {};
    const hash = chainHash(prev, { seq, at, actor: input.actor, action: input.action, pids, detail });
    rows.push({
      seq,
      at,
      actor: input.actor,
      action: input.action,
      pids: pids.join(','),
      detail: JSON.stringify(detail),
      hash,
    });
    out?.push({ seq, at: new Date(atMs), actor: input.actor, action: input.action, pids: [...pids], detail, hash });
    prev = hash;
  }
  if (buffer !== undefined) {
    buffer.head = { seq, hash: prev };
    for (const r of rows) buffer.rows.push(r);
    return;
  }
  // 7 columns: 100 rows stay far below every engine's parameter limit.
  for (const part of chunks(rows, 100)) await ctx.q.insertInto('audit_log').values(part).execute();
  await ctx.q.updateTable('audit_head').set({ seq, hash: prev }).where('id', '=', 1).execute();
}

function toEntry(r: AuditLogTable): AuditEntry {
  return {
    seq: Number(r.seq),
    at: toDate(r.at),
    actor: r.actor,
    action: r.action,
    pids: r.pids === '' ? [] : (r.pids.split(',') as Pid[]),
    detail: parseDetail(r.detail) ?? {},
    hash: r.hash,
  };
}

class SqlAudit implements AuditLog {
  readonly #ctx: Context;

  constructor(ctx: Context) {
    this.#ctx = ctx;
  }

  async append(entry: AuditEntryInput): Promise<AuditEntry> {
    const out: AuditEntry[] = [];
    await write(this.#ctx, (tx) => appendAudit(tx, [entry], out));
    const e = out[0];
    if (e === undefined) throw new ScsError('SCS_STORE_FAILED', 'audit append returned nothing');
    return e;
  }

  async list(filter: AuditFilter = {}): Promise<AuditEntry[]> {
    const limit = checkLimit(filter.limit, AUDIT_LIST_DEFAULT, LIST_MAX, 'limit');
    const order = filter.order ?? 'desc';
    await flushAudit(this.#ctx);
    let q = this.#ctx.q.selectFrom('audit_log').selectAll();
    if (filter.pid !== undefined) {
      if (!/^[0-9A-Z]{8}$/.test(filter.pid)) throw new ScsError('SCS_PID_INVALID', `PID "${filter.pid}" is invalid`);
      // Entries list whole 8-character PIDs separated by commas, so a substring match is exact.
      q = q.where('pids', 'like', `%${filter.pid}%`);
    }
    if (filter.action !== undefined) q = q.where('action', '=', filter.action);
    if (filter.afterSeq !== undefined) q = q.where('seq', '>', filter.afterSeq);
    if (filter.beforeSeq !== undefined) q = q.where('seq', '<', filter.beforeSeq);
    const rows = await guard(q.orderBy('seq', order).limit(limit).execute());
    return rows.map(toEntry);
  }

  async verify(): Promise<AuditVerifyResult> {
    await flushAudit(this.#ctx);
    const q = this.#ctx.q;
    const head = await guard(q.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirst());
    if (head === undefined) return { ok: false, entries: 0, brokenSeq: 1, reason: 'the audit_head row is missing' };
    const headSeq = Number(head.seq);
    // Entries appended while we walk are beyond headSeq and not part of this check.
    async function* rows(): AsyncGenerator<StoredChainEntry> {
      let after = 0;
      for (;;) {
        const page = await guard(
          q
            .selectFrom('audit_log')
            .selectAll()
            .where('seq', '>', after)
            .where('seq', '<=', headSeq)
            .orderBy('seq')
            .limit(1000)
            .execute(),
        );
        for (const r of page) {
          yield {
            seq: Number(r.seq),
            at: r.at,
            actor: r.actor,
            action: r.action,
            pids: r.pids === '' ? [] : r.pids.split(','),
            detailJson: r.detail,
            hash: r.hash,
          };
        }
        const last = page.at(-1);
        if (last === undefined || page.length < 1000) return;
        after = Number(last.seq);
      }
    }
    const result = await verifyChain(rows(), { seq: headSeq, hash: head.hash });
    if (!result.ok) return result;
    // Rows beyond the head that no append wrote (one statement, one snapshot: no race with appends).
    const tail = await guard(
      q
        .selectFrom('audit_head')
        .select((eb) => [
          'seq',
          eb
            .selectFrom('audit_log')
            .select((e2) => e2.fn.max('seq').as('m'))
            .as('maxSeq'),
        ])
        .where('id', '=', 1)
        .executeTakeFirst(),
    );
    if (tail !== undefined && tail.maxSeq !== null && Number(tail.maxSeq) > Number(tail.seq)) {
      return {
        ok: false,
        entries: result.entries,
        brokenSeq: Number(tail.seq) + 1,
        reason: `entries after the chain head (seq ${Number(tail.seq)}) were added outside the audit log`,
      };
    }
    return result;
  }
}
