import type { Pid } from '../psk/pid.ts';
import type { Pps } from '../psk/pps.ts';
import type { Secret } from '../secret.ts';
import type { PskState } from './lifecycle.ts';
import type { PageOptions, PskPage } from './psk-pages.ts';
import type { ProvisioningRepositories } from './provisioning/types.ts';
import type { TokenRepository } from './tokens/tokens.ts';
import type { TransferRepository } from './transfers/transfers.ts';
import type { PkiRepository } from './pki/pki.ts';

export type { PskState } from './lifecycle.ts';
export type { PageOptions, PskPage } from './psk-pages.ts';

/**
 * The PSK database as the rest of the server sees it. Adapter-neutral and async: the SQLite
 * adapter (src/store/sqlite) implements it now, a PostgreSQL adapter later; both must pass the
 * contract suite in src/store/contract.ts. PPS values only cross this interface as `Secret`s,
 * and every reveal and state change is written to the audit log in the same transaction.
 */
export interface Store extends ProvisioningRepositories {
  readonly engine: 'sqlite' | 'postgres';
  readonly psks: PskRepository;
  readonly batches: BatchRepository;
  readonly audit: AuditLog;
  /** REST API tokens (hashed), src/store/tokens. */
  readonly tokens: TokenRepository;
  /** Export log and imported bundles (src/store/transfers, docs/transfer.md). */
  readonly transfers: TransferRepository;
  /** Provisioning certificates for remote configuration (src/store/pki, docs/pki.md). */
  readonly pki: PkiRepository;
  /**
   * Runs `fn` in one write transaction: everything done through `tx` commits or rolls back
   * together. Use `tx`, not the outer store, inside `fn` (the outer store waits for the
   * transaction to end: SQLite has one connection). Nested calls join the outer transaction.
   */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A PSK without its passphrase. */
export interface PskRow {
  /** Insertion order, unique; the keyset-paging cursor (`afterId`). */
  readonly id: number;
  readonly pid: Pid;
  readonly batch: string;
  readonly state: PskState;
  /** While `in_use`: the state it came from, where `release` puts it back. Otherwise null. */
  readonly priorState: PskState | null;
  /** The device that consumed this PSK (set on `consumed`), or the device it is bound to. */
  readonly deviceUuid: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface PskWithPps extends PskRow {
  readonly pps: Secret<Pps>;
}

export interface NewPsk {
  readonly pid: Pid;
  readonly pps: Secret<Pps>;
  readonly batch: string;
  /** Initial state; default `available`. */
  readonly state?: PskState;
  /** Creation time to keep (a transfer bundle carries it); default now. */
  readonly createdAt?: Date;
}

export interface InsertContext {
  readonly actor: string;
  /** What brought the PSKs in; the audit action is `psk.<source>` (e.g. psk.generate, psk.import). */
  readonly source: string;
  /** Extra audit facts (file name, bundle id, ...); never secrets. */
  readonly detail?: AuditDetail;
}

export interface InsertResult {
  readonly inserted: number;
  /** PIDs not inserted because the PID was already present (in the database or earlier in `rows`). */
  readonly duplicates: Pid[];
  /** Subset of `duplicates` whose existing PPS differs from the one offered (SCS_PSK_CONFLICT for an importer). */
  readonly conflicts: Pid[];
}

/**
 * PSKs as columns, for a bulk insert (an import of a million): no object per PSK. Record i is
 * `pids[i]`, PPS bytes [32 i, 32 i + 32) of `pps` (canonical ASCII), `batches[i]`, `states[i]`
 * and `createdAt[i]` (ms since the epoch).
 */
export interface PskColumns {
  readonly count: number;
  readonly pids: readonly Pid[];
  /** Plaintext: handed over to the bulk insert, which zeroes it once sealed. */
  readonly pps: Buffer;
  readonly batches: readonly string[];
  readonly states: readonly PskState[];
  readonly createdAt: readonly number[];
}

/** One bulk insert inside a transaction (`psks.bulkInsert`). */
export interface PskBulkInsert {
  /** Checks and seals one set of columns (sealing may still run when it resolves). */
  add(columns: PskColumns): Promise<void>;
  /**
   * Inserts everything added, skipping PIDs already present (or repeated: the first one
   * counts), creates missing batches and audits the inserted PIDs (as insertMany). Call once.
   */
  finish(): Promise<InsertResult>;
}

export interface PskFilter {
  readonly state?: PskState | readonly PskState[];
  readonly batch?: string;
  /** Keyset paging: rows with `id` greater than this. */
  readonly afterId?: number;
  /** At most this many rows (list: default 1000, at most 10,000). */
  readonly limit?: number;
}

export interface RevealContext {
  readonly actor: string;
  /** Why the PPS is read (export, provision, cli-list, ...); recorded in the audit entry. */
  readonly purpose: string;
}

export interface IterateOptions extends PskFilter {
  /** Rows read, decrypted and audited per round trip (default 1000, at most 1000). */
  readonly chunkSize?: number;
}

export interface PskTransition {
  readonly pids: readonly Pid[];
  /** States the caller expects the PSKs to be in; a PSK in any other state fails the whole call. */
  readonly from: readonly PskState[];
  readonly to: PskState;
  readonly actor: string;
  readonly reason?: string;
  /** Recorded on the row (and in the audit entry) when given; expected with `to: 'consumed'`. */
  readonly deviceUuid?: string;
}

export interface ReleaseContext {
  readonly actor: string;
  readonly reason?: string;
}

export interface PskRepository {
  /**
   * Inserts PSKs, skipping PIDs that already exist (ON CONFLICT DO NOTHING), creating batches
   * that do not exist yet, and auditing the inserted PIDs (one entry per ≤1000 PIDs of one
   * batch). One transaction per call: pass chunks (10,000 rows is a good size), not a million.
   */
  insertMany(rows: readonly NewPsk[], context: InsertContext): Promise<InsertResult>;
  /**
   * insertMany for a whole import inside one `store.transaction`: add columns in any number of
   * calls, then `finish`. On SQLite the rows are staged in a temporary table (sealed) and go
   * into `psks` in PID order with one statement at the end (docs/psk-database.md, "Bulk import").
   */
  bulkInsert(context: InsertContext): PskBulkInsert;
  get(pid: Pid): Promise<PskRow | undefined>;
  /** The PPS of one PSK, audited as `psk.reveal`. SCS_PSK_NOT_FOUND if absent. */
  reveal(pid: Pid, context: RevealContext): Promise<Secret<Pps>>;
  /** One page in `id` order; continue with `afterId` = the last row's id. */
  list(filter?: PskFilter): Promise<PskRow[]>;
  /**
   * Every matching row with its PPS, in `id` order, read in chunks (each chunk one short
   * transaction that also writes its `psk.reveal` audit entry). Memory stays at one chunk
   * whatever the total, so this is the export path for a million rows. `limit` caps the total.
   */
  iterateWithPps(options: IterateOptions, context: RevealContext): AsyncIterable<PskWithPps>;
  /**
   * The bulk path of exports: like iterateWithPps, as pages of columns with the PPS packed and
   * decrypted off the main thread, and optionally each page moved to `options.to` by one
   * set-based UPDATE (src/store/psk-pages.ts). Each page is audited as `psk.reveal` (and
   * `psk.state`).
   */
  pages(options: PageOptions, context: RevealContext): AsyncIterable<PskPage>;
  /**
   * Moves PSKs from one of `from` to `to`, all or nothing: if any PID is missing
   * (SCS_PSK_NOT_FOUND) or in a state outside `from` or not allowed to go to `to`
   * (SCS_PSK_STATE_INVALID naming PID, from and to), nothing changes.
   */
  transition(change: PskTransition): Promise<void>;
  /** Puts `in_use` PSKs back into the state they had before (a failed provisioning attempt). */
  release(pids: readonly Pid[], context: ReleaseContext): Promise<void>;
  countByState(filter?: { readonly batch?: string }): Promise<Record<PskState, number>>;
}

export interface BatchRow {
  readonly name: string;
  readonly createdAt: Date;
  /** Provisioning profile the batch is bound to (a later issue); null = the server default. */
  readonly profile: string | null;
}

export interface BatchStats extends BatchRow {
  readonly counts: Record<PskState, number>;
  readonly total: number;
}

export interface BatchRepository {
  get(name: string): Promise<BatchRow | undefined>;
  /** Every batch with its PSK counts by state, oldest first. */
  list(): Promise<BatchStats[]>;
}

/** Audit facts: flat, JSON-safe, never secrets. */
export type AuditDetail = Readonly<Record<string, string | number | boolean | null>>;

export interface AuditEntryInput {
  readonly actor: string;
  /** Dotted verb: psk.generate, psk.import, psk.reveal, psk.state, hello.unknown_pid, ... */
  readonly action: string;
  readonly pids?: readonly Pid[];
  readonly detail?: AuditDetail;
}

export interface AuditEntry {
  readonly seq: number;
  readonly at: Date;
  readonly actor: string;
  readonly action: string;
  readonly pids: Pid[];
  readonly detail: AuditDetail;
  /** Lowercase hex SHA-256 over the previous hash and this entry (src/store/audit-chain.ts). */
  readonly hash: string;
}

export interface AuditFilter {
  /** Entries that list this PID. */
  readonly pid?: Pid;
  readonly action?: string;
  /** `asc` from `afterSeq`, or `desc` (newest first, default) from `beforeSeq`. */
  readonly order?: 'asc' | 'desc';
  readonly afterSeq?: number;
  readonly beforeSeq?: number;
  /** Default 100, at most 10,000. */
  readonly limit?: number;
}

export type AuditVerifyResult =
  | { readonly ok: true; readonly entries: number; readonly headSeq: number; readonly headHash: string }
  | { readonly ok: false; readonly entries: number; readonly brokenSeq: number; readonly reason: string };

export interface AuditLog {
  /** Appends one entry to the hash chain (in the current transaction if called on `tx`). */
  append(entry: AuditEntryInput): Promise<AuditEntry>;
  list(filter?: AuditFilter): Promise<AuditEntry[]>;
  /** Walks the whole chain from seq 1 and reports the first entry that does not verify. */
  verify(): Promise<AuditVerifyResult>;
}

/** What `openStore` returns: the store, and what happened to the master key. */
export interface OpenedStore {
  readonly store: Store;
  readonly masterKey: {
    readonly file: string;
    /** True on the very first start: tell the operator where the key is and to back it up. */
    readonly created: boolean;
  };
}
