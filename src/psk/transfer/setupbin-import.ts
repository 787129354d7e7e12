import { createHash } from 'node:crypto';
import { ScsError } from '../../errors.ts';
import { defaultBatchName } from '../../store/batch.ts';
import type { PskState } from '../../store/lifecycle.ts';
import type { NewPsk, Store } from '../../store/store.ts';
import type { ExportRow } from '../../store/transfers/transfers.ts';
import { decodeSetupBin, SETUPBIN_CHUNK_BYTES, type SetupBinFile, type SetupBinRecord } from '../formats/setupbin.ts';
import { formatPid, type Pid } from '../pid.ts';
import type { ImportOptions } from './import.ts';
import { IMPORT_CHUNK, insertChunk } from './insert.ts';
import { readAll } from './source.ts';

/** **(choice)** The largest setup.bin read: 200,000 records (~100 MB), twice the export limit. */
const SETUPBIN_IMPORT_MAX_BYTES = SETUPBIN_CHUNK_BYTES * 200_001;

export interface SetupBinConsumedRecord {
  readonly number: number;
  /** The PID the record carried: from the export log when the BIOS zeroed it; null if unknown. */
  readonly pid: Pid | null;
  /** The PSK's state here now (null: not in this database). */
  readonly state: PskState | null;
}

export interface SetupBinImportSummary {
  readonly format: 'setup-bin';
  /** reconciled: matched to an export of this server; imported / nothing-new: a foreign file. */
  readonly outcome: 'reconciled' | 'imported' | 'nothing-new';
  readonly file: string;
  /** The export this key was matched to; null for a file this server did not write. */
  readonly exportId: string | null;
  readonly version: number;
  readonly records: number;
  readonly consumed: readonly SetupBinConsumedRecord[];
  /** Records still holding a PID/PPS (the BIOS has not used them). */
  readonly unconsumed: number;
  readonly inserted: number;
  readonly duplicates: number;
}

function unmatched(message: string, details: Readonly<Record<string, string | number | null>> = {}): ScsError {
  return new ScsError('SCS_SETUPBIN_UNMATCHED', message, { details });
}

function headerMatches(e: ExportRow, f: SetupBinFile): boolean {
  return e.setupBinVersion === f.version && e.recordCount === f.recordCount && e.doNotConsume === f.doNotConsume;
}

interface LivePair {
  readonly number: number;
  readonly record: SetupBinRecord & { readonly pid: Pid };
}

/**
 * Which export of this server wrote the file, or undefined for a file it did not write.
 * docs/transfer.md, "setup.bin import": by the hash as written (an untouched key), else by the
 * PIDs still on the key (every one must sit at the record number the export log gives it), else
 * (every record consumed) by version, record count and flag when exactly one export fits.
 */
async function findExport(
  store: Store,
  file: SetupBinFile,
  sha256: string,
  live: readonly LivePair[],
  options: ImportOptions,
): Promise<ExportRow | undefined> {
  const name = options.fileName;
  const mismatch = (e: ExportRow): ScsError =>
    unmatched(
      `${name} does not match export ${e.id}: it is format ${file.version} with ${file.recordCount} records` +
        `${file.doNotConsume ? ' (do not consume)' : ''}, the export wrote format ${e.setupBinVersion ?? '?'} with ${e.recordCount}`,
      { exportId: e.id },
    );
  if (options.exportId !== undefined) {
    const e = await store.transfers.getExport(options.exportId);
    if (e === undefined || e.format !== 'setup-bin') {
      throw new ScsError('SCS_ARGUMENT_INVALID', `no setup.bin export with id ${options.exportId}`);
    }
    if (!headerMatches(e, file)) throw mismatch(e);
    return e;
  }
  const [bySha] = await store.transfers.findExportsBySha256(sha256);
  if (bySha !== undefined) return bySha;
  if (live.length > 0) {
    const at = new Map(live.map((l) => [l.record.pid as string, l.number]));
    const hits = await store.transfers.findExportRecordsByPid(live.map((l) => l.record.pid));
    if (hits.length === 0) return undefined;
    const fits = new Map<string, number>();
    for (const h of hits) if (at.get(h.pid) === h.number) fits.set(h.exportId, (fits.get(h.exportId) ?? 0) + 1);
    const full = [...fits].filter(([, n]) => n === live.length).map(([id]) => id);
    for (const id of full) {
      const e = await store.transfers.getExport(id);
      if (e !== undefined && headerMatches(e, file)) return e;
      if (e !== undefined && full.length === 1) throw mismatch(e);
    }
    const h = hits[0];
    const where = h === undefined ? '' : ` (PID ${formatPid(h.pid)} is record ${h.number} of export ${h.exportId})`;
    // Some PIDs on the key are in our export logs but not where one export put them: a key we
    // cannot classify is never used to hand anything out (docs/formats.md, import duties).
    throw unmatched(
      `${name} holds PIDs this server exported, but no one export of this server wrote them at these record numbers${where}`,
    );
  }
  const candidates = await store.transfers.findSetupBinExports({
    version: file.version,
    recordCount: file.recordCount,
    doNotConsume: file.doNotConsume,
  });
  if (candidates.length > 1) {
    throw unmatched(
      `${name}: every record is consumed, and ${candidates.length} setup.bin exports of this server have this format and record count (${candidates
        .slice(0, 5)
        .map((c) => c.id)
        .join(', ')}): name the export to reconcile against`,
      { candidates: candidates.length },
    );
  }
  return candidates[0];
}

/**
 * A setup.bin coming back (docs/transfer.md, "setup.bin import"): decodes it whole (a bad check
 * character or a broken layout rejects it), matches it to the export that wrote it, reports the
 * records the BIOS consumed with the PIDs they carried (from the export log when zeroed) and
 * audits them as psk.setupbin.reconcile. **(choice)** States do not change: a consumed record's
 * PSK is on a device that will send a hello (exported -> in_use -> consumed then), and an
 * unconsumed record is still on the key, which may yet be plugged into another machine, so it
 * stays exported. Pairs still on the key are compared with the database (another PPS: rejected).
 * A file this server did not write: its unconsumed pairs are imported like a CSV.
 */
export async function importSetupBin(
  store: Store,
  chunks: AsyncIterable<Buffer>,
  options: ImportOptions,
): Promise<SetupBinImportSummary> {
  const name = options.fileName;
  const bytes = await readAll(
    chunks,
    SETUPBIN_IMPORT_MAX_BYTES,
    () => new ScsError('SCS_SETUPBIN_MALFORMED', `${name}: larger than ${SETUPBIN_IMPORT_MAX_BYTES} bytes`),
  );
  const file = decodeSetupBin(bytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const live: LivePair[] = [];
  const consumedRecords: SetupBinRecord[] = [];
  for (const r of file.records) {
    if (r.consumed) consumedRecords.push(r);
    else if (r.pid !== undefined && r.pps !== undefined) live.push({ number: r.number, record: { ...r, pid: r.pid } });
    // A valid, unconsumed record without a PID/PPS carries no PSK: nothing to reconcile.
  }
  options.signal?.throwIfAborted();

  return store.transaction(async (tx) => {
    const exp = await findExport(tx, file, sha256, live, options);
    const logged = new Map<number, Pid>();
    if (exp !== undefined) {
      const numbers = file.records.map((r) => r.number);
      for (const e of await tx.transfers.exportRecords(exp.id, numbers)) logged.set(e.number, e.pid);
      for (const r of file.records) {
        const was = logged.get(r.number);
        if (r.pid !== undefined && was !== undefined && r.pid !== was) {
          throw unmatched(
            `${name}: record ${r.number} carries PID ${formatPid(r.pid)}, export ${exp.id} wrote ${formatPid(was)} there`,
            { exportId: exp.id, record: r.number },
          );
        }
      }
    }
    const consumed: SetupBinConsumedRecord[] = [];
    for (const r of consumedRecords) {
      const pid = r.pid ?? logged.get(r.number) ?? null;
      const row = pid === null ? undefined : await tx.psks.get(pid);
      consumed.push({ number: r.number, pid, state: row?.state ?? null });
    }

    // Pairs still on the key: compared with the database (same PID with another PPS rejects the
    // file); for a foreign key, new ones are taken in. An exported key's pairs are all here already.
    const batch = options.batch ?? defaultBatchName('import');
    const state = options.state ?? 'exported';
    const detail = { format: 'setup-bin', file: name, exportId: exp?.id ?? null };
    let inserted = 0;
    let duplicates = 0;
    for (let i = 0; i < live.length; i += IMPORT_CHUNK) {
      const rows: NewPsk[] = [];
      for (const l of live.slice(i, i + IMPORT_CHUNK)) {
        if (l.record.pps !== undefined) rows.push({ pid: l.record.pid, pps: l.record.pps, batch, state });
      }
      const got = await insertChunk(tx, rows, options, detail);
      inserted += got.inserted;
      duplicates += got.duplicates;
      options.onProgress?.(Math.min(i + IMPORT_CHUNK, live.length), live.length);
    }
    const known = consumed.filter((c): c is SetupBinConsumedRecord & { pid: Pid } => c.pid !== null);
    const summaryDetail = {
      ...detail,
      version: file.version,
      records: file.recordCount,
      consumed: consumed.length,
      consumedUnknown: consumed.length - known.length,
      unconsumed: live.length,
      inserted,
      duplicates,
    };
    if (known.length === 0) {
      await tx.audit.append({ actor: options.actor, action: 'psk.setupbin.reconcile', detail: summaryDetail });
    }
    for (let i = 0; i < known.length; i += 1000) {
      await tx.audit.append({
        actor: options.actor,
        action: 'psk.setupbin.reconcile',
        pids: known.slice(i, i + 1000).map((c) => c.pid),
        detail: summaryDetail,
      });
    }
    const outcome = exp !== undefined ? 'reconciled' : inserted > 0 ? 'imported' : 'nothing-new';
    return {
      format: 'setup-bin',
      outcome,
      file: name,
      exportId: exp?.id ?? null,
      version: file.version,
      records: file.recordCount,
      consumed,
      unconsumed: live.length,
      inserted,
      duplicates,
    };
  });
}
