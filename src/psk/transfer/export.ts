import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { ScsError } from '../../errors.ts';
import { Secret } from '../../secret.ts';
import type { PskState } from '../../store/lifecycle.ts';
import type { PskPage, Store } from '../../store/store.ts';
import type { ExportFormat } from '../../store/transfers/transfers.ts';
import { BundleEncoder, type BundleKdf, type ScryptParams } from '../formats/bundle.ts';
import { encodeCsvHeader, encodeCsvRows } from '../formats/csv.ts';
import {
  DEFAULT_SETUPBIN_VERSION,
  encodeSetupBin,
  type SetupBinRecordInput,
  type SetupBinVersion,
} from '../formats/setupbin.ts';
import type { PskPair } from '../formats/pair.ts';
import type { Pid } from '../pid.ts';
import { PPS_LENGTH, type Pps } from '../pps.ts';
import { AtomicFile, fileExists, publishFile } from './atomic-file.ts';
import { checkNewPassphrase } from './passphrase.ts';
import { writeTo, type ExportSink } from './sink.ts';

export type { ExportFormat } from '../../store/transfers/transfers.ts';
export type { ExportSink } from './sink.ts';

/**
 * **(choice)** A setup.bin is built in memory (the codec writes it in one allocation): 100,000
 * records make a 51 MB file, far beyond a USB key's practical use (one record per machine).
 */
export const SETUPBIN_EXPORT_MAX = 100_000;

export interface SetupBinExportSettings {
  /** 1-4; default DEFAULT_SETUPBIN_VERSION (2, written as 2.1: docs/formats.md says why). */
  readonly version?: SetupBinVersion;
  /** The MEBx password the machines have now (factory default "admin"). */
  readonly currentMebxPassword: Secret<string>;
  /** The MEBx password to set; required by the codec when the current one is "admin". */
  readonly newMebxPassword?: Secret<string>;
  /** Host name per record: `{n}` record number, `{n:W}` zero-padded to W digits, `{pid}` lowercase PID. */
  readonly hostNamePattern?: string;
  readonly domainName?: string;
  /** Header flag: the BIOS never consumes the record (one record only). */
  readonly doNotConsume?: boolean;
  /** Default true (docs/formats.md: obfuscation, not protection). */
  readonly scramble?: boolean;
  /** Module 2 var 17/18: where the machines send their hello. */
  readonly provisioningServerAddress?: string;
  readonly provisioningServerPort?: number;
  readonly enableAmt?: boolean;
}

export interface BundleExportSettings {
  readonly passphrase: Secret<string>;
  /** Mark the exported PSKs `transferred` here (in the export's transaction). Default: a copy. */
  readonly move?: boolean;
  /** Header source name; default the host name. */
  readonly sourceName?: string;
  /** Tests only: cheaper scrypt. */
  readonly kdfParams?: ScryptParams;
  readonly kdf?: BundleKdf;
  readonly chunkSize?: number;
}

export interface ExportOptions {
  readonly format: ExportFormat;
  /** Who the audit log names. */
  readonly actor: string;
  readonly batch?: string;
  /** At most this many PSKs (oldest first; a bundle takes available ones before exported ones); default all. */
  readonly count?: number;
  /** Which PSKs: `available` or `exported`. Default: available (csv, setup-bin); both (bundle). */
  readonly state?: PskState;
  /** Recorded in the export log and the audit entry: the file path or the download name. */
  readonly fileName: string;
  /** Required for setup-bin. */
  readonly setupBin?: SetupBinExportSettings;
  /** Required for bundle. */
  readonly bundle?: BundleExportSettings;
  /** Called after every group of rows with the PSKs written so far. */
  readonly onProgress?: (done: number, total: number) => void;
  readonly signal?: AbortSignal;
}

export interface ExportSummary {
  readonly exportId: string;
  readonly format: ExportFormat;
  /** PSKs in the file. */
  readonly count: number;
  readonly file: string;
  readonly bytes: number;
  /** Lowercase hex SHA-256 of the bytes written. */
  readonly sha256: string;
  /** exported: csv/setup-bin (available -> exported); copy / move: bundle. */
  readonly mode: 'exported' | 'copy' | 'move';
  /** PSKs whose state changed here: available -> exported, or -> transferred with a move. */
  readonly stateChanged: number;
  readonly bundleId?: string;
  readonly setupBinVersion?: SetupBinVersion;
}

/** Where the bytes go, and what must happen before the database commits. */
interface Target {
  readonly file: string;
  readonly tempFile: string | null;
  write(chunk: Buffer): Promise<void>;
  /** Runs after the last byte and before the commit; throwing rolls the export back. */
  beforeCommit(): Promise<void>;
}

/**
 * Streams an export to `sink` (a Writable, e.g. an HTTP response, or an async chunk callback).
 * Everything happens in one database transaction: count, read and decrypt (audited as
 * psk.reveal), encode, write, change states, log and audit; it commits only after the last byte
 * was accepted by the sink. The Writable is not ended: end it when this resolves, destroy it when
 * this rejects (nothing changed here then).
 */
export async function exportPsks(store: Store, options: ExportOptions, sink: ExportSink): Promise<ExportSummary> {
  const write = writeTo(sink);
  return runExport(store, options, {
    file: options.fileName,
    tempFile: null,
    write,
    beforeCommit: () => Promise.resolve(),
  });
}

export interface FileExportOptions extends Omit<ExportOptions, 'fileName'> {
  /** Replace an existing file at the path (default: refuse). */
  readonly overwrite?: boolean;
}

/**
 * Exports to a file, atomically (docs/transfer.md, "Crash safety"): the bytes go to a temp file
 * in the same directory (mode 0600), which is fsynced and closed; then the database transaction
 * commits (states, export log with status pending and the temp name, audit); then the temp file
 * is renamed into place and the log entry marked complete. A crash before the commit leaves the
 * database unchanged (and at most a stray temp file, never the final name); a crash after it
 * leaves the complete file under its temp name, which `recoverPendingExports` renames.
 */
export async function exportPsksToFile(store: Store, options: FileExportOptions, file: string): Promise<ExportSummary> {
  const target = await AtomicFile.create(file, options.overwrite === true ? { overwrite: true } : {});
  let summary: ExportSummary;
  try {
    summary = await runExport(
      store,
      { ...options, fileName: target.file },
      {
        file: target.file,
        tempFile: target.tempFile,
        write: (chunk) => target.write(chunk),
        beforeCommit: () => target.sync(),
      },
    );
  } catch (e) {
    await target.discard();
    throw e;
  }
  try {
    await target.publish();
  } catch (e) {
    throw new ScsError(
      'SCS_FILE_IO',
      `the export was committed but its file could not be renamed: the complete file is ${target.tempFile}; rename it to ${target.file} (or run the export again to retry the rename)`,
      { cause: e, details: { file: target.file, tempFile: target.tempFile, exportId: summary.exportId } },
    );
  }
  await store.transfers.completeExport(summary.exportId);
  return summary;
}

export interface RecoveredExport {
  readonly exportId: string;
  readonly file: string;
  /** renamed: the temp file was moved into place; present: the file was there already; lost: neither exists. */
  readonly outcome: 'renamed' | 'present' | 'lost';
}

/**
 * Finishes exports whose commit happened but whose rename did not (a crash in between): renames
 * the temp file into place when the final name is free. Safe to run at any time.
 */
export async function recoverPendingExports(store: Store): Promise<RecoveredExport[]> {
  const out: RecoveredExport[] = [];
  for (const e of await store.transfers.pendingExports()) {
    const temp = e.tempFile;
    let outcome: RecoveredExport['outcome'];
    if (temp !== null && (await fileExists(temp)) && !(await fileExists(e.file))) {
      await publishFile(temp, e.file);
      outcome = 'renamed';
    } else if (await fileExists(e.file)) {
      outcome = 'present';
    } else {
      out.push({ exportId: e.id, file: e.file, outcome: 'lost' });
      continue;
    }
    await store.transfers.completeExport(e.id);
    out.push({ exportId: e.id, file: e.file, outcome });
  }
  return out;
}

/** PPS i of a page's packed plaintexts. */
function ppsAt(pps: Buffer, i: number): Pps {
  return pps.toString('latin1', i * PPS_LENGTH, (i + 1) * PPS_LENGTH) as Pps;
}

function argument(message: string): ScsError {
  return new ScsError('SCS_ARGUMENT_INVALID', message);
}

/** Which states an export reads. */
function sourceStates(options: ExportOptions): PskState[] {
  if (options.state === undefined) return options.format === 'bundle' ? ['available', 'exported'] : ['available'];
  if (options.state !== 'available' && options.state !== 'exported') {
    throw argument(`only available or exported PSKs can be exported, not ${options.state}`);
  }
  return [options.state];
}

function checkOptions(options: ExportOptions): void {
  if (options.count !== undefined && (!Number.isSafeInteger(options.count) || options.count < 1)) {
    throw argument(`count must be a whole number of at least 1, got ${options.count}`);
  }
  if (options.format === 'setup-bin' && options.setupBin === undefined) {
    throw argument('a setup.bin export needs its settings (at least the current MEBx password)');
  }
  if (options.format === 'bundle') {
    if (options.bundle === undefined)
      throw new ScsError('SCS_PASSPHRASE_MISSING', 'a bundle export needs a passphrase');
    checkNewPassphrase(options.bundle.passphrase);
  }
}

/** `{n}`, `{n:W}` and `{pid}` in a host name pattern (docs/transfer.md). */
export function expandHostName(pattern: string, n: number, pid: Pid): string {
  return pattern.replace(/\{(n(?::(\d{1,2}))?|pid)\}/g, (_m, what: string, width: string | undefined) =>
    what === 'pid' ? pid.toLowerCase() : String(n).padStart(width === undefined ? 0 : Number(width), '0'),
  );
}

async function runExport(store: Store, options: ExportOptions, target: Target): Promise<ExportSummary> {
  checkOptions(options);
  const states = sourceStates(options);
  const exportId = randomUUID();
  const format = options.format;
  const move = format === 'bundle' && options.bundle?.move === true;
  const mode: ExportSummary['mode'] = format === 'bundle' ? (move ? 'move' : 'copy') : 'exported';
  const hash = createHash('sha256');
  let bytes = 0;
  const emit = async (chunk: Buffer): Promise<void> => {
    if (chunk.length === 0) return;
    hash.update(chunk);
    bytes += chunk.length;
    await target.write(chunk);
  };

  return store.transaction(async (tx) => {
    // One transaction is one snapshot: the count written first (bundle header) is the count read.
    const counts = await tx.psks.countByState(options.batch === undefined ? {} : { batch: options.batch });
    const matching = states.reduce((sum, s) => sum + counts[s], 0);
    const total = Math.min(options.count ?? matching, matching);
    if (total === 0) {
      const where = options.batch === undefined ? '' : ` in batch "${options.batch}"`;
      throw new ScsError('SCS_EXPORT_EMPTY', `no ${states.join(' or ')} PSKs${where} to export`, {
        details: { state: states.join(','), batch: options.batch ?? null },
      });
    }
    if (format === 'setup-bin' && total > SETUPBIN_EXPORT_MAX) {
      throw argument(
        `${total} PSKs match; a setup.bin holds at most ${SETUPBIN_EXPORT_MAX} records here: give a count`,
      );
    }
    const pattern = options.setupBin?.hostNamePattern;
    if (format === 'setup-bin' && pattern !== undefined && total > 1 && !/\{(n(:\d{1,2})?|pid)\}/.test(pattern)) {
      throw argument(`host name pattern "${pattern}" has no {n} or {pid}: ${total} machines would get the same name`);
    }
    const bundleSettings = options.bundle;
    const encoder =
      format === 'bundle' && bundleSettings !== undefined
        ? new BundleEncoder({
            passphrase: bundleSettings.passphrase,
            recordCount: total,
            sourceName: bundleSettings.sourceName ?? hostname(),
            ...(bundleSettings.kdfParams === undefined ? {} : { kdfParams: bundleSettings.kdfParams }),
            ...(bundleSettings.kdf === undefined ? {} : { kdf: bundleSettings.kdf }),
            ...(bundleSettings.chunkSize === undefined ? {} : { chunkSize: bundleSettings.chunkSize }),
          })
        : undefined;
    // scrypt (bundle) runs on the thread pool while the first pages are read below.
    const header = encoder?.startAsync();
    header?.catch(() => undefined); // awaited below

    const setupRecords: SetupBinRecordInput[] = [];
    const setupSettings = options.setupBin;
    let done = 0;
    let stateChanged = 0;

    const take = async (page: PskPage): Promise<void> => {
      const pps = page.pps.reveal();
      if (format === 'csv') {
        const pairs: PskPair[] = new Array<PskPair>(page.count);
        for (let i = 0; i < page.count; i++) {
          pairs[i] = { pid: page.pids[i] as Pid, pps: new Secret(ppsAt(pps, i)) };
        }
        await emit(encodeCsvRows(pairs));
      } else if (encoder !== undefined) {
        const chunks = encoder.addColumns({
          count: page.count,
          pids: page.pids,
          pps,
          // Only available/exported rows are read (sourceStates).
          state: page.state === 'exported' ? 'exported' : 'available',
          createdAt: page.createdAt,
          batches: page.batches,
        });
        for (const c of chunks) await emit(c);
      } else if (setupSettings !== undefined) {
        for (let i = 0; i < page.count; i++) {
          const n = setupRecords.length + 1;
          const pid = page.pids[i] as Pid;
          setupRecords.push({
            pid,
            pps: new Secret(ppsAt(pps, i)),
            ...(setupSettings.hostNamePattern === undefined
              ? {}
              : { hostName: expandHostName(setupSettings.hostNamePattern, n, pid) }),
          });
        }
      }
    };

    // One state at a time: SQLite serves `state = ? AND id > ? ORDER BY id` straight from the
    // (state, rowid) index, whereas `state IN (a, b)` sorts every remaining row for each page of
    // 1,000 (quadratic over a million). A bundle thus carries its available PSKs first.
    // The state changes are made page by page by the store in this transaction (one UPDATE per
    // page): they commit with the file, or not at all. A bundle copy changes nothing; a move
    // takes every row; csv/setup-bin mark what was available.
    let remaining = total;
    const pagesOf = (state: PskState): { to: PskState | undefined; pages: AsyncIterator<PskPage> } => {
      const to: PskState | undefined =
        format === 'bundle' ? (move ? 'transferred' : undefined) : state === 'available' ? 'exported' : undefined;
      const pages = tx.psks.pages(
        {
          state,
          limit: remaining,
          ...(options.batch === undefined ? {} : { batch: options.batch }),
          ...(to === undefined ? {} : { to, reason: `${format} export ${exportId}` }),
        },
        { actor: options.actor, purpose: `export ${format} ${exportId}` },
      );
      return { to, pages: pages[Symbol.asyncIterator]() };
    };
    const nextOf = (pages: AsyncIterator<PskPage>): Promise<IteratorResult<PskPage>> => {
      const p = pages.next();
      p.catch(() => undefined); // awaited in the loop
      return p;
    };
    // The first pages are read and their PPS opened (the seal worker threads starting meanwhile)
    // while scrypt derives the bundle key: neither waits for the other.
    let s = 0;
    let source = pagesOf(states[0] as PskState);
    let next = nextOf(source.pages);
    try {
      if (header !== undefined) await emit(await header);
      if (format === 'csv') await emit(encodeCsvHeader());
      for (;;) {
        const r = await next;
        if (r.done === true) {
          s++;
          if (s >= states.length || remaining === 0) break;
          source = pagesOf(states[s] as PskState);
          next = nextOf(source.pages);
          continue;
        }
        const page = r.value;
        options.signal?.throwIfAborted();
        await take(page);
        if (source.to !== undefined) stateChanged += page.count;
        remaining -= page.count;
        done += page.count;
        options.onProgress?.(done, total);
        next = nextOf(source.pages);
      }
    } finally {
      // Stops the reader (and waits for the pages it read ahead) if the loop ended early.
      await source.pages.return?.(undefined).catch(() => undefined);
    }
    if (done !== total) {
      throw new ScsError('SCS_STORE_FAILED', `export read ${done} PSKs where ${total} were counted`);
    }

    let setupBinVersion: SetupBinVersion | undefined;
    if (encoder !== undefined) await emit(encoder.finish());
    if (setupSettings !== undefined && format === 'setup-bin') {
      setupBinVersion = setupSettings.version ?? DEFAULT_SETUPBIN_VERSION;
      const file = encodeSetupBin(setupRecords, {
        version: setupBinVersion,
        currentMebxPassword: setupSettings.currentMebxPassword,
        ...(setupSettings.newMebxPassword === undefined ? {} : { newMebxPassword: setupSettings.newMebxPassword }),
        ...(setupSettings.domainName === undefined ? {} : { domainName: setupSettings.domainName }),
        ...(setupSettings.provisioningServerAddress === undefined
          ? {}
          : { provisioningServerAddress: setupSettings.provisioningServerAddress }),
        ...(setupSettings.provisioningServerPort === undefined
          ? {}
          : { provisioningServerPort: setupSettings.provisioningServerPort }),
        ...(setupSettings.enableAmt === undefined ? {} : { enableAmt: setupSettings.enableAmt }),
        doNotConsume: setupSettings.doNotConsume === true,
        scramble: setupSettings.scramble ?? true,
      });
      await emit(file);
    }
    // The file's fsync runs while the export log and the audit entry are written: the
    // transaction still commits only after it has finished, and rolls back if it failed.
    const synced = target.beforeCommit();
    synced.catch(() => undefined); // awaited below on every path
    try {
      const sha256 = hash.digest('hex');
      await tx.transfers.recordExport({
        id: exportId,
        format,
        file: target.file,
        tempFile: target.tempFile,
        status: target.tempFile === null ? 'complete' : 'pending',
        recordCount: total,
        batch: options.batch ?? null,
        mode,
        sha256,
        bytes,
        setupBinVersion: setupBinVersion ?? null,
        doNotConsume: format === 'setup-bin' ? setupSettings?.doNotConsume === true : null,
        bundleId: encoder?.bundleId ?? null,
        actor: options.actor,
      });
      if (format === 'setup-bin') {
        // The record number -> PID log: after the BIOS zeroes a consumed record, only this says
        // which PID it carried (docs/formats.md, "What the BIOS does to a consumed record").
        for (let i = 0; i < setupRecords.length; i += 10_000) {
          await tx.transfers.addExportRecords(
            exportId,
            setupRecords.slice(i, i + 10_000).map((r, k) => ({ number: i + k + 1, pid: r.pid })),
          );
        }
      }
      await tx.audit.append({
        actor: options.actor,
        action: 'psk.export',
        detail: {
          exportId,
          format,
          count: total,
          file: target.file,
          batch: options.batch ?? null,
          mode,
          bytes,
          sha256,
          ...(encoder === undefined ? {} : { bundleId: encoder.bundleId }),
          ...(setupBinVersion === undefined ? {} : { setupBinVersion }),
        },
      });
      const summary: ExportSummary = {
        exportId,
        format,
        count: total,
        file: target.file,
        bytes,
        sha256,
        mode,
        stateChanged,
        ...(encoder === undefined ? {} : { bundleId: encoder.bundleId }),
        ...(setupBinVersion === undefined ? {} : { setupBinVersion }),
      };
      await synced;
      return summary;
    } catch (e) {
      await synced.catch(() => undefined);
      throw e;
    }
  });
}
