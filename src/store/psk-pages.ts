import type { Secret } from '../secret.ts';
import type { PskState } from './lifecycle.ts';

/**
 * Which PSKs `psks.pages` reads, and what happens to them (docs/transfer.md, "Export"). One
 * state per call: `state = ? AND id > ? ORDER BY id` is an index range on SQLite and
 * PostgreSQL, `state IN (...)` is not.
 */
export interface PageOptions {
  readonly state: PskState;
  readonly batch?: string;
  /** At most this many rows in all; default every matching row. */
  readonly limit?: number;
  /** Rows per page (default and most 1000: one audit entry per page). */
  readonly pageSize?: number;
  /**
   * Move every row read to this state, page by page: one set-based UPDATE per page (`id`
   * between the page's first and last, still in `state`), checked by its row count, audited as
   * `psk.state`. Call inside `store.transaction` so the change commits with whatever the caller
   * does with the rows.
   */
  readonly to?: PskState;
  /** Recorded in the `psk.state` entries. */
  readonly reason?: string;
}

/**
 * One page: columns, no object per row. Inside a transaction the store reads the next page
 * (and audits it) while the caller holds this one, so do not write through the same
 * transaction between pages (two audit appends in flight would collide on the chain's next seq
 * and fail the transaction); do the writes after the iteration, as the export does.
 */
export interface PskPage {
  readonly count: number;
  readonly pids: readonly string[];
  readonly batches: readonly string[];
  /** Creation times, milliseconds since the epoch. */
  readonly createdAt: Float64Array;
  /** The state every row had when it was read (before `to`). */
  readonly state: PskState;
  /**
   * PPS i is bytes [32 i, 32 i + 32), ASCII. Zeroed when the iteration moves to the next page
   * or ends: copy out what you keep.
   */
  readonly pps: Secret<Buffer>;
  /** `id` of the page's last row. */
  readonly lastId: number;
}
