import { sql } from 'kysely';
import { ScsError } from '../../errors.ts';
import { OVERHEAD } from '../../crypto/envelope.ts';
import { PID_LENGTH, type Pid } from '../../psk/pid.ts';
import { PPS_LENGTH } from '../../psk/pps.ts';
import { Secret } from '../../secret.ts';
import { canTransition, isPskState, PSK_STATES } from '../lifecycle.ts';
import type { PageOptions, PskPage } from '../psk-pages.ts';
import type { AuditEntryInput, RevealContext } from '../store.ts';
import { appendAudit, guard, write, type SqlContext } from './sql-store.ts';

const SEALED_PPS_BYTES = OVERHEAD + PPS_LENGTH;
/**
 * **(choice)** Reads of at most this many rows open their PPS on the main thread: starting the
 * seal worker costs 50-400 ms of CPU (built / under tsx), opening inline ~5 µs a PPS. A 20,000-
 * record setup.bin export used half the CPU this way (docs/psk-database.md, "Figures").
 */
const INLINE_OPEN_MAX = 25_000;
/** Rows per page, and at most: one `psk.reveal` (and one `psk.state`) entry per page. */
const PAGE_MAX = 1000;

interface ReadPage {
  readonly count: number;
  readonly pids: string[];
  readonly batches: string[];
  readonly createdAt: Float64Array;
  readonly lastId: number;
  /** The page had as many rows as asked for: there may be more. */
  readonly full: boolean;
  /** Plaintexts, being opened on the seal worker while the caller works on the page before. */
  readonly pps: Promise<Buffer>;
}

function argument(message: string): ScsError {
  return new ScsError('SCS_ARGUMENT_INVALID', message);
}

function checkOptions(o: PageOptions): void {
  for (const [what, s] of [
    ['state', o.state as string],
    ['target state', o.to as string | undefined],
  ] as const) {
    if (s !== undefined && !isPskState(s)) throw argument(`${what} "${s}" is not one of ${PSK_STATES.join(', ')}`);
  }
  if (o.pageSize !== undefined && (!Number.isInteger(o.pageSize) || o.pageSize < 1 || o.pageSize > PAGE_MAX)) {
    throw argument(`pageSize must be a whole number 1..${PAGE_MAX}, got ${o.pageSize}`);
  }
  if (o.limit !== undefined && (!Number.isSafeInteger(o.limit) || o.limit < 1)) {
    throw argument(`limit must be a whole number of at least 1, got ${o.limit}`);
  }
  if (o.to !== undefined && !canTransition(o.state, o.to)) {
    throw new ScsError(
      'SCS_PSK_STATE_INVALID',
      `PSKs cannot change from ${o.state} to ${o.to} (${o.state} -> ${o.to} is not an allowed transition)`,
      { details: { from: o.state, to: o.to } },
    );
  }
}

/**
 * ISO text (SQLite, or PostgreSQL `text`) or a Date (`timestamptz`) to epoch ms. Rows of one
 * insert share their creation time, so the last conversion is kept.
 */
function epochMs(): (v: string | Date) => number {
  let lastText = '';
  let lastMs = 0;
  return (v) => {
    if (typeof v !== 'string') return v.getTime();
    if (v !== lastText) {
      lastText = v;
      lastMs = Date.parse(v);
    }
    return lastMs;
  };
}

interface PackedRow {
  n: number | string;
  first_id: number | string | null;
  last_id: number | string | null;
  pids: string | null;
  pps: Uint8Array | null;
  batches: string | null;
  created: string | null;
}

/**
 * One page as one row of packed columns: a million rows read as a thousand rows, not a million
 * row objects (and one Buffer per page instead of one per sealed PPS: about a third of the
 * time the row-per-PSK read took). Every PID is 8 characters and every sealed PPS 65 bytes;
 * batch names and ISO timestamps never hold a newline. The same query on PostgreSQL is
 * `string_agg(..., '' / ''::bytea / chr(10) ORDER BY id)`, FOR UPDATE in the inner select.
 */
function pageQuery(ctx: SqlContext, o: PageOptions, afterId: number, take: number) {
  const batch = o.batch === undefined ? sql`` : sql` and batch = ${o.batch}`;
  const lock = o.to !== undefined && ctx.engine.lockRows ? sql` for update` : sql``;
  const inner = sql`select id, pid, pps, batch, created_at from psks where state = ${o.state}${batch} and id > ${afterId} order by id limit ${take}${lock}`;
  if (ctx.engine.name === 'postgres') {
    return sql<PackedRow>`select count(*) as n, min(id) as first_id, max(id) as last_id,
      string_agg(pid, '' order by id) as pids, string_agg(pps, ''::bytea order by id) as pps,
      string_agg(batch, chr(10) order by id) as batches, string_agg(created_at, chr(10) order by id) as created
      from (${inner}) page`;
  }
  // group_concat keeps a blob's bytes (its length is taken, embedded zeros included); the cast
  // turns the concatenation back into a blob (a test compares it with the rows read one by one).
  // No ORDER BY inside the aggregates: it made SQLite sort every page once per aggregate (2.4
  // times the time of the query). The columns stay aligned whatever the order, because one
  // aggregation pass feeds the same row to every aggregate, and SQLite aggregates the ordered
  // inner query in its order (last/first id are taken with max/min, not by position).
  return sql<PackedRow>`select count(*) as n, min(id) as first_id, max(id) as last_id,
    group_concat(pid, '') as pids, cast(group_concat(pps, x'') as blob) as pps,
    group_concat(batch, char(10)) as batches, group_concat(created_at, char(10)) as created
    from (${inner}) page`;
}

function corrupt(what: string): ScsError {
  return new ScsError('SCS_STORE_FAILED', `export page: ${what}`);
}

/**
 * One page in the caller's transaction: read (locked on PostgreSQL when it moves), moved to
 * `to` by one UPDATE over the page's id range (a row count that differs means a concurrent
 * change: the whole call fails rather than overwriting it), audited, and its PPS opened
 * (openManyPacked: natively, or on the seal worker without the addon). On SQLite the UPDATE is
 * the engine's movePskPage (its SQL and the planner hint are there), which leaves out the per-row
 * CHECK evaluation (the states were checked by checkOptions); this kysely UPDATE is PostgreSQL's.
 */
async function readPage(
  ctx: SqlContext,
  o: PageOptions,
  context: RevealContext,
  afterId: number,
  take: number,
  toMs: (v: string | Date) => number,
): Promise<ReadPage | undefined> {
  const row = (await pageQuery(ctx, o, afterId, take).execute(ctx.q)).rows[0];
  const count = row === undefined ? 0 : Number(row.n);
  if (row === undefined || count === 0) return undefined;
  const { pids: pidText, pps: sealed, batches: batchText, created: createdText } = row;
  if (pidText?.length !== count * PID_LENGTH) throw corrupt('a PID is not 8 characters');
  if (sealed?.length !== count * SEALED_PPS_BYTES) throw corrupt(`a sealed PPS is not ${SEALED_PPS_BYTES} bytes`);
  const batches = batchText?.split('\n') ?? [];
  const created = createdText?.split('\n') ?? [];
  if (batches.length !== count || created.length !== count) throw corrupt('a batch or timestamp holds a newline');
  const pids = new Array<string>(count);
  const createdAt = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    pids[i] = pidText.slice(i * PID_LENGTH, (i + 1) * PID_LENGTH);
    createdAt[i] = toMs(created[i] as string);
  }
  const firstId = Number(row.first_id);
  const lastId = Number(row.last_id);
  const entries: AuditEntryInput[] = [
    {
      actor: context.actor,
      action: 'psk.reveal',
      pids: pids as Pid[],
      detail: { purpose: context.purpose, count },
    },
  ];
  const to = o.to;
  if (to !== undefined) {
    const priorState = to === 'in_use' ? o.state : null;
    const updatedAt = new Date().toISOString();
    let changed: number;
    if (ctx.engine.movePskPage !== undefined) {
      changed = ctx.engine.movePskPage({
        from: o.state,
        to,
        priorState,
        updatedAt,
        firstId,
        lastId,
        ...(o.batch === undefined ? {} : { batch: o.batch }),
      });
    } else {
      let u = ctx.q
        .updateTable('psks')
        .set({ state: to, prior_state: priorState, updated_at: updatedAt })
        .where('id', '>=', firstId)
        .where('id', '<=', lastId)
        .where('state', '=', o.state);
      if (o.batch !== undefined) u = u.where('batch', '=', o.batch);
      changed = Number((await u.executeTakeFirst()).numUpdatedRows);
    }
    if (changed !== count) {
      throw new ScsError('SCS_PSK_STATE_INVALID', `PSKs changed state concurrently while moving ${o.state} -> ${to}`);
    }
    entries.push({
      actor: context.actor,
      action: 'psk.state',
      pids: pids as Pid[],
      detail: { ...(o.reason === undefined ? {} : { reason: o.reason }), from: o.state, to },
    });
  }
  await appendAudit(ctx, entries);
  // Sealed blobs then PIDs (their associated data), as the seal worker takes them.
  const data = Buffer.allocUnsafeSlow(count * (SEALED_PPS_BYTES + PID_LENGTH));
  data.set(sealed, 0);
  data.write(pidText, count * SEALED_PPS_BYTES, 'latin1');
  const pps = ctx.box.openManyPacked(
    data,
    new Uint32Array(count).fill(SEALED_PPS_BYTES),
    new Uint32Array(count).fill(PID_LENGTH),
    { inline: o.limit !== undefined && o.limit <= INLINE_OPEN_MAX },
  );
  pps.catch(() => undefined); // awaited by the caller; never an unhandled rejection
  return { count, pids, batches, createdAt, lastId, full: count === take, pps };
}

/**
 * **(choice)** Pages read ahead inside a transaction: their PPS are opened on the seal worker's
 * threads (two on a 2-core machine) while the caller encodes the current page, so the threads
 * always hold work. Each page read ahead holds ~73 KB of sealed data and then its plaintexts.
 */
const READ_AHEAD = 4;

/**
 * `psks.pages` (src/store/psk-pages.ts). Inside a transaction up to READ_AHEAD pages are read
 * (and their PPS sent to the seal worker) while the caller works on the current one; outside,
 * each page is its own short transaction and nothing is read ahead.
 */
export async function* psksPages(
  ctx: SqlContext,
  options: PageOptions,
  context: RevealContext,
): AsyncGenerator<PskPage> {
  checkOptions(options);
  const pageSize = options.pageSize ?? PAGE_MAX;
  const toMs = epochMs();
  let remaining = options.limit ?? Number.POSITIVE_INFINITY;
  const fetch = (afterId: number): Promise<ReadPage | undefined> => {
    const take = Math.min(pageSize, remaining);
    remaining -= take;
    return guard(write(ctx, (tx) => readPage(tx, options, context, afterId, take, toMs)));
  };
  let stopped = false;
  /** The page after `prev` (read once `prev` has been: its last id is the cursor), if there may be one. */
  const after = (prev: ReadPage | undefined): Promise<ReadPage | undefined> =>
    !stopped && prev !== undefined && prev.full && remaining > 0 ? fetch(prev.lastId) : Promise.resolve(undefined);
  const queue: Promise<ReadPage | undefined>[] = [];
  let tail: Promise<ReadPage | undefined> = Promise.resolve(undefined);
  const enqueue = (p: Promise<ReadPage | undefined>): void => {
    p.catch(() => undefined); // awaited in order below; never an unhandled rejection
    queue.push(p);
    tail = p;
  };
  const readAhead = ctx.inTx;
  enqueue(fetch(0));
  let held: Buffer | undefined;
  let first = true;
  try {
    for (;;) {
      // The reads chain one after another (each needs the previous page's last id). Not before
      // the first page is taken: a bundle export reads it while scrypt holds 128 MiB, and more
      // pages in flight would start a second seal worker thread then too (peak RSS).
      while (readAhead && !first && queue.length <= READ_AHEAD) enqueue(tail.then(after));
      first = false;
      const next = queue.shift();
      if (next === undefined) return;
      const page = await next;
      if (page === undefined) return;
      const pps = await page.pps;
      held = pps;
      if (pps.length !== page.count * PPS_LENGTH) {
        throw new ScsError('SCS_STORE_FAILED', `a stored PPS of this page is not ${PPS_LENGTH} bytes`);
      }
      yield {
        count: page.count,
        pids: page.pids,
        batches: page.batches,
        createdAt: page.createdAt,
        state: options.state,
        pps: new Secret(pps),
        lastId: page.lastId,
      };
      pps.fill(0);
      held = undefined;
      if (!readAhead) enqueue(after(page));
    }
  } finally {
    stopped = true; // a caller that stops early: no further page is read (or moved)
    held?.fill(0);
    // Pages read ahead must not outlive the generator: their statements belong to the caller's transaction.
    for (const p of queue.splice(0)) {
      const pending = await p.catch(() => undefined);
      (await pending?.pps.catch(() => undefined))?.fill(0);
    }
  }
}
