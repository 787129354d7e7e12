import type { Pid } from '../../psk/pid.ts';

/**
 * What the PSK export and import services (src/psk/transfer, docs/transfer.md) remember:
 * every export (so a setup.bin key that comes back can be reconciled even where the BIOS zeroed
 * the records, and so a file whose rename was cut short by a crash can be found again), and
 * every bundle imported (so the same bundle imported twice is a no-op).
 */
export type ExportFormat = 'csv' | 'setup-bin' | 'bundle';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['csv', 'setup-bin', 'bundle'];

/**
 * `pending`: the database committed the export but the file was not yet renamed into place
 * (a crash in between leaves the complete file at `tempFile`); `complete`: the file is at `file`
 * (or the bytes were handed to a stream sink).
 */
export type ExportStatus = 'pending' | 'complete';

export interface NewExport {
  readonly id: string;
  readonly format: ExportFormat;
  /** Where the file was written (absolute path), or the name given for a streamed download. */
  readonly file: string;
  /** The temp file while `pending`; null for a stream sink. */
  readonly tempFile: string | null;
  readonly status: ExportStatus;
  readonly recordCount: number;
  /** The --batch filter, if any. */
  readonly batch: string | null;
  /** What happened to the PSKs here: exported (csv, setup-bin), copy or move (bundle). */
  readonly mode: 'exported' | 'copy' | 'move';
  /** Lowercase hex SHA-256 of the bytes as written. */
  readonly sha256: string;
  readonly bytes: number;
  /** setup.bin: the format version (1-4) and the "do not consume" flag. */
  readonly setupBinVersion: number | null;
  readonly doNotConsume: boolean | null;
  readonly bundleId: string | null;
  readonly actor: string;
}

export interface ExportRow extends NewExport {
  readonly createdAt: Date;
}

/** One line of a setup.bin export log: the 1-based record number and the PID written there. */
export interface ExportRecordEntry {
  readonly number: number;
  readonly pid: Pid;
}

export interface ExportRecordMatch extends ExportRecordEntry {
  readonly exportId: string;
}

export interface ImportRow {
  readonly bundleId: string;
  readonly file: string;
  readonly sourceName: string;
  readonly recordCount: number;
  readonly inserted: number;
  readonly actor: string;
  readonly importedAt: Date;
}

export interface TransferRepository {
  /** Records an export; call it inside the transaction that changes the exported PSKs' states. */
  recordExport(entry: NewExport): Promise<void>;
  /** Adds setup.bin record number -> PID lines to an export (chunk them: ≤ 10,000 per call is fine). */
  addExportRecords(exportId: string, records: readonly ExportRecordEntry[]): Promise<void>;
  /** The file is in place: `pending` -> `complete`, temp file forgotten. */
  completeExport(exportId: string): Promise<void>;
  getExport(exportId: string): Promise<ExportRow | undefined>;
  /** Exports committed whose file was never renamed into place (oldest first). */
  pendingExports(): Promise<ExportRow[]>;
  /** setup.bin exports with this SHA-256 as written (a key the BIOS has not touched yet). */
  findExportsBySha256(sha256: string): Promise<ExportRow[]>;
  /** setup.bin exports with this version, record count and flag, newest first. */
  findSetupBinExports(match: {
    readonly version: number;
    readonly recordCount: number;
    readonly doNotConsume: boolean;
  }): Promise<ExportRow[]>;
  /** The log lines (of any export) that name one of these PIDs. */
  findExportRecordsByPid(pids: readonly Pid[]): Promise<ExportRecordMatch[]>;
  /** One export's log lines with these record numbers. */
  exportRecords(exportId: string, numbers: readonly number[]): Promise<ExportRecordEntry[]>;
  getImport(bundleId: string): Promise<ImportRow | undefined>;
  /** Remembers an imported bundle; call it inside the import transaction. */
  recordImport(entry: Omit<ImportRow, 'importedAt'>): Promise<void>;
}

/** Tables (schema version 4, src/store/sqlite/transfers-migration.ts). */
export interface PskExportsTable {
  id: string;
  format: ExportFormat;
  file: string;
  temp_file: string | null;
  status: ExportStatus;
  record_count: number;
  batch: string | null;
  mode: 'exported' | 'copy' | 'move';
  sha256: string;
  bytes: number;
  setupbin_version: number | null;
  /** 0 or 1; null when not a setup.bin. */
  do_not_consume: number | null;
  bundle_id: string | null;
  actor: string;
  created_at: string;
}

export interface PskExportRecordsTable {
  export_id: string;
  record_number: number;
  pid: string;
}

export interface PskImportsTable {
  bundle_id: string;
  file: string;
  source_name: string;
  record_count: number;
  inserted: number;
  actor: string;
  imported_at: string;
}
