import { ScsError } from '../../errors.ts';
import type { Secret } from '../../secret.ts';
import { defaultBatchName } from '../../store/batch.ts';
import type { InsertResult, NewPsk, PskColumns, Store } from '../../store/store.ts';
import type { ImportRow } from '../../store/transfers/transfers.ts';
import { BundleColumnBuilder, BundleDecoder, type BundleKdf, type DecodedBundleColumns } from '../formats/bundle.ts';
import { CsvDecoder, type CsvRow } from '../formats/csv.ts';
import { conflictError, IMPORT_CHUNK, insertChunk } from './insert.ts';
import { importSetupBin, type SetupBinImportSummary } from './setupbin-import.ts';
import { peekFormat, type ImportSource } from './source.ts';

export type { ImportSource } from './source.ts';
export { IMPORT_CHUNK } from './insert.ts';
export type { SetupBinImportSummary, SetupBinConsumedRecord } from './setupbin-import.ts';

export interface ImportOptions {
  /** Who the audit log names. */
  readonly actor: string;
  /** Recorded in the audit log: the file path or upload name. */
  readonly fileName: string;
  /**
   * Batch for pairs that carry none: CSV rows without a batch column, setup.bin records
   * (default `import-<date>-<time>`). For a bundle it replaces every record's own batch.
   */
  readonly batch?: string;
  /**
   * **(choice)** State of pairs from a CSV or a setup.bin this server did not write: default
   * `exported`, because those files are hand-out formats (the pairs are on paper or on a key
   * already); `available` lets them be handed out again from here. Bundles keep their states.
   */
  readonly state?: 'available' | 'exported';
  /** Needed for a bundle only; a function is called only then (a CLI prompts only then). */
  readonly passphrase?: Secret<string> | (() => Promise<Secret<string>>);
  /** setup.bin: reconcile against this export (when the file alone cannot say which). */
  readonly exportId?: string;
  /** Records taken in so far; `total` is known for a bundle (its header) and a setup.bin. */
  readonly onProgress?: (done: number, total: number | undefined) => void;
  readonly signal?: AbortSignal;
  /** Tests only: a cheaper KDF (must match the one the bundle was written with). */
  readonly kdf?: BundleKdf;
}

export interface CsvImportSummary {
  readonly format: 'csv';
  readonly outcome: 'imported' | 'nothing-new';
  readonly file: string;
  /** Pair lines read. */
  readonly records: number;
  readonly inserted: number;
  /** Pairs already here with the same PPS (or repeated in the file). */
  readonly duplicates: number;
}

export interface BundleImportSummary {
  readonly format: 'bundle';
  readonly outcome: 'imported' | 'nothing-new' | 'already-imported';
  readonly file: string;
  readonly bundleId: string;
  readonly sourceName: string;
  readonly createdAt: Date;
  readonly records: number;
  readonly inserted: number;
  readonly duplicates: number;
  /** For `already-imported`: when and from which file it was taken in before. */
  readonly previous?: ImportRow;
}

export type ImportSummary = CsvImportSummary | BundleImportSummary | SetupBinImportSummary;

/**
 * Imports a CSV, setup.bin or transfer bundle (detected from the first bytes), all or nothing:
 * the whole file is decoded inside one database transaction that commits only after the last
 * byte decoded and authenticated; any error (wrong passphrase, damage, truncation, a bad check
 * character, a PID here with another PPS) rolls everything back. docs/transfer.md, "Import".
 */
export async function importPsks(store: Store, source: ImportSource, options: ImportOptions): Promise<ImportSummary> {
  const peeked = await peekFormat(source);
  try {
    switch (peeked.format) {
      case 'csv':
        return await importCsv(store, peeked.chunks, options);
      case 'bundle':
        return await importBundle(store, peeked.chunks, options);
      case 'setupbin':
        return await importSetupBin(store, peeked.chunks, options);
    }
  } finally {
    await peeked.chunks.return(undefined);
  }
}

async function importCsv(
  store: Store,
  chunks: AsyncIterable<Buffer>,
  options: ImportOptions,
): Promise<CsvImportSummary> {
  const batch = options.batch ?? defaultBatchName('import');
  const state = options.state ?? 'exported';
  const detail = { format: 'csv', file: options.fileName };
  return store.transaction(async (tx) => {
    const decoder = new CsvDecoder();
    let pending: NewPsk[] = [];
    let records = 0;
    let inserted = 0;
    let duplicates = 0;
    const take = async (rows: readonly CsvRow[], last: boolean): Promise<void> => {
      for (const r of rows) pending.push({ pid: r.pid, pps: r.pps, batch: r.batch ?? batch, state });
      records += rows.length;
      if (pending.length >= IMPORT_CHUNK || (last && pending.length > 0)) {
        const got = await insertChunk(tx, pending, options, detail);
        inserted += got.inserted;
        duplicates += got.duplicates;
        pending = [];
        options.onProgress?.(records, undefined);
      }
    };
    for await (const c of chunks) await take(decoder.push(c), false);
    await take(decoder.end(), true);
    if (records === 0) {
      throw new ScsError('SCS_CSV_MALFORMED', `${options.fileName}: the file holds no PID,PPS line`);
    }
    const outcome = inserted === 0 ? 'nothing-new' : 'imported';
    await tx.audit.append({
      actor: options.actor,
      action: 'psk.import.file',
      detail: { ...detail, outcome, records, inserted, duplicates },
    });
    return { format: 'csv', outcome, file: options.fileName, records, inserted, duplicates };
  });
}

async function resolvePassphrase(options: ImportOptions): Promise<Secret<string>> {
  const p = options.passphrase;
  const got = typeof p === 'function' ? await p() : p;
  if (got === undefined || got.reveal().length === 0) {
    throw new ScsError('SCS_PASSPHRASE_MISSING', `${options.fileName} is a transfer bundle: its passphrase is needed`);
  }
  return got;
}

async function importBundle(
  store: Store,
  chunks: AsyncGenerator<Buffer>,
  options: ImportOptions,
): Promise<BundleImportSummary> {
  const passphrase = await resolvePassphrase(options);
  const decoder = new BundleDecoder({ passphrase, ...(options.kdf === undefined ? {} : { kdf: options.kdf }) });
  // Read up to the (authenticated) header outside the transaction: a bundle taken in before is
  // recognised by its id without reading on, and a wrong passphrase fails before any write.
  const pending = new BundleColumnBuilder();
  try {
    while (decoder.header === undefined) {
      const next = await chunks.next();
      if (next.done === true) {
        decoder.finishColumns(pending); // throws: truncated inside the header
        break;
      }
      decoder.pushColumns(next.value, pending);
    }
  } catch (e) {
    pending.discard();
    throw e;
  }
  const header = decoder.header;
  if (header === undefined) throw new ScsError('SCS_BUNDLE_MALFORMED', `${options.fileName}: no bundle header`);
  const base = {
    format: 'bundle' as const,
    file: options.fileName,
    bundleId: header.bundleId,
    sourceName: header.sourceName,
    createdAt: header.createdAt,
    records: header.recordCount,
  };
  const previous = await store.transfers.getImport(header.bundleId);
  if (previous !== undefined) {
    pending.discard();
    return { ...base, outcome: 'already-imported', inserted: 0, duplicates: 0, previous };
  }
  const detail = { format: 'bundle', file: options.fileName, bundleId: header.bundleId };
  return store.transaction(async (tx) => {
    const bulk = tx.psks.bulkInsert({ actor: options.actor, source: 'import', detail });
    let seen = 0;
    const flush = async (last: boolean): Promise<void> => {
      if (pending.count < IMPORT_CHUNK && !(last && pending.count > 0)) return;
      options.signal?.throwIfAborted();
      seen += pending.count;
      await bulk.add(toStoreColumns(pending.take(), options.batch));
      options.onProgress?.(seen, header.recordCount);
    };
    let result: InsertResult;
    try {
      await flush(false);
      for await (const c of chunks) {
        decoder.pushColumns(c, pending);
        await flush(false);
      }
      // Authenticates the final chunk: only now is the whole file known to be genuine and complete.
      decoder.finishColumns(pending);
      await flush(true);
      if (seen !== header.recordCount) {
        throw new ScsError(
          'SCS_BUNDLE_MALFORMED',
          `${options.fileName}: ${seen} records where the header declares ${header.recordCount}`,
        );
      }
      result = await bulk.finish();
    } finally {
      pending.discard();
    }
    if (result.conflicts.length > 0) throw conflictError(result.conflicts, options.fileName);
    const inserted = result.inserted;
    const duplicates = result.duplicates.length;
    const outcome = inserted === 0 ? 'nothing-new' : 'imported';
    await tx.transfers.recordImport({
      bundleId: header.bundleId,
      file: options.fileName,
      sourceName: header.sourceName,
      recordCount: header.recordCount,
      inserted,
      actor: options.actor,
    });
    await tx.audit.append({
      actor: options.actor,
      action: 'psk.import.file',
      detail: { ...detail, sourceName: header.sourceName, outcome, records: seen, inserted, duplicates },
    });
    return { ...base, outcome, inserted, duplicates };
  });
}

/** Decoded records as store columns (`batch` replaces every record's own). */
function toStoreColumns(c: DecodedBundleColumns, batch: string | undefined): PskColumns {
  return batch === undefined ? c : { ...c, batches: new Array<string>(c.count).fill(batch) };
}
