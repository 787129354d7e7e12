import type { Selectable } from 'kysely';
import { ScsError } from '../../errors.ts';
import type { Pid } from '../../psk/pid.ts';
import { guard, write, type SqlContext } from '../sql/sql-store.ts';
import type {
  ExportRecordEntry,
  ExportRecordMatch,
  ExportRow,
  ImportRow,
  NewExport,
  PskExportsTable,
  TransferRepository,
} from './transfers.ts';

/** 3 columns x 300 rows: far below every engine's parameter limit. */
const INSERT_CHUNK = 300;
/** Values per IN (...) list. */
const IN_CHUNK = 500;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function toExport(r: Selectable<PskExportsTable>): ExportRow {
  return {
    id: r.id,
    format: r.format,
    file: r.file,
    tempFile: r.temp_file,
    status: r.status,
    recordCount: Number(r.record_count),
    batch: r.batch,
    mode: r.mode,
    sha256: r.sha256,
    bytes: Number(r.bytes),
    setupBinVersion: r.setupbin_version === null ? null : Number(r.setupbin_version),
    doNotConsume: r.do_not_consume === null ? null : Number(r.do_not_consume) === 1,
    bundleId: r.bundle_id,
    actor: r.actor,
    createdAt: new Date(r.created_at),
  };
}

/** The export log and imported bundles over the shared SQL core (same transactions as the PSKs). */
export class SqlTransfers implements TransferRepository {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async recordExport(e: NewExport): Promise<void> {
    await write(this.#ctx, async (tx) => {
      await tx.q
        .insertInto('psk_exports')
        .values({
          id: e.id,
          format: e.format,
          file: e.file,
          temp_file: e.tempFile,
          status: e.status,
          record_count: e.recordCount,
          batch: e.batch,
          mode: e.mode,
          sha256: e.sha256,
          bytes: e.bytes,
          setupbin_version: e.setupBinVersion,
          do_not_consume: e.doNotConsume === null ? null : e.doNotConsume ? 1 : 0,
          bundle_id: e.bundleId,
          actor: e.actor,
          created_at: new Date().toISOString(),
        })
        .execute();
    });
  }

  async addExportRecords(exportId: string, records: readonly ExportRecordEntry[]): Promise<void> {
    if (records.length === 0) return;
    await write(this.#ctx, async (tx) => {
      for (const part of chunks(records, INSERT_CHUNK)) {
        await tx.q
          .insertInto('psk_export_records')
          .values(part.map((r) => ({ export_id: exportId, record_number: r.number, pid: r.pid })))
          .execute();
      }
    });
  }

  async completeExport(exportId: string): Promise<void> {
    const res = await write(this.#ctx, (tx) =>
      tx.q
        .updateTable('psk_exports')
        .set({ status: 'complete', temp_file: null })
        .where('id', '=', exportId)
        .executeTakeFirst(),
    );
    if (Number(res.numUpdatedRows) !== 1) {
      throw new ScsError('SCS_ARGUMENT_INVALID', `no export with id ${exportId}`, { details: { exportId } });
    }
  }

  async getExport(exportId: string): Promise<ExportRow | undefined> {
    const r = await guard(
      this.#ctx.q.selectFrom('psk_exports').selectAll().where('id', '=', exportId).executeTakeFirst(),
    );
    return r === undefined ? undefined : toExport(r);
  }

  async pendingExports(): Promise<ExportRow[]> {
    const rows = await guard(
      this.#ctx.q.selectFrom('psk_exports').selectAll().where('status', '=', 'pending').orderBy('created_at').execute(),
    );
    return rows.map(toExport);
  }

  async findExportsBySha256(sha256: string): Promise<ExportRow[]> {
    const rows = await guard(
      this.#ctx.q
        .selectFrom('psk_exports')
        .selectAll()
        .where('format', '=', 'setup-bin')
        .where('sha256', '=', sha256)
        .orderBy('created_at', 'desc')
        .execute(),
    );
    return rows.map(toExport);
  }

  async findSetupBinExports(match: {
    readonly version: number;
    readonly recordCount: number;
    readonly doNotConsume: boolean;
  }): Promise<ExportRow[]> {
    const rows = await guard(
      this.#ctx.q
        .selectFrom('psk_exports')
        .selectAll()
        .where('format', '=', 'setup-bin')
        .where('setupbin_version', '=', match.version)
        .where('record_count', '=', match.recordCount)
        .where('do_not_consume', '=', match.doNotConsume ? 1 : 0)
        .orderBy('created_at', 'desc')
        .execute(),
    );
    return rows.map(toExport);
  }

  async findExportRecordsByPid(pids: readonly Pid[]): Promise<ExportRecordMatch[]> {
    const out: ExportRecordMatch[] = [];
    for (const part of chunks([...new Set(pids)], IN_CHUNK)) {
      const rows = await guard(
        this.#ctx.q
          .selectFrom('psk_export_records')
          .select(['export_id', 'record_number', 'pid'])
          .where('pid', 'in', part)
          .execute(),
      );
      for (const r of rows) out.push({ exportId: r.export_id, number: Number(r.record_number), pid: r.pid as Pid });
    }
    return out;
  }

  async exportRecords(exportId: string, numbers: readonly number[]): Promise<ExportRecordEntry[]> {
    const out: ExportRecordEntry[] = [];
    for (const part of chunks([...new Set(numbers)], IN_CHUNK)) {
      const rows = await guard(
        this.#ctx.q
          .selectFrom('psk_export_records')
          .select(['record_number', 'pid'])
          .where('export_id', '=', exportId)
          .where('record_number', 'in', part)
          .execute(),
      );
      for (const r of rows) out.push({ number: Number(r.record_number), pid: r.pid as Pid });
    }
    return out.sort((a, b) => a.number - b.number);
  }

  async getImport(bundleId: string): Promise<ImportRow | undefined> {
    const r = await guard(
      this.#ctx.q.selectFrom('psk_imports').selectAll().where('bundle_id', '=', bundleId).executeTakeFirst(),
    );
    if (r === undefined) return undefined;
    return {
      bundleId: r.bundle_id,
      file: r.file,
      sourceName: r.source_name,
      recordCount: Number(r.record_count),
      inserted: Number(r.inserted),
      actor: r.actor,
      importedAt: new Date(r.imported_at),
    };
  }

  async recordImport(entry: Omit<ImportRow, 'importedAt'>): Promise<void> {
    await write(this.#ctx, async (tx) => {
      await tx.q
        .insertInto('psk_imports')
        .values({
          bundle_id: entry.bundleId,
          file: entry.file,
          source_name: entry.sourceName,
          record_count: entry.recordCount,
          inserted: entry.inserted,
          actor: entry.actor,
          imported_at: new Date().toISOString(),
        })
        .execute();
    });
  }
}
