import { ScsError } from '../../errors.ts';
import type { NewPsk, Store } from '../../store/store.ts';
import { formatPid, type Pid } from '../pid.ts';
import type { ImportOptions } from './import.ts';

/** PSKs per insertMany call inside the one import transaction. */
export const IMPORT_CHUNK = 10_000;

export function conflictError(pids: readonly Pid[], where: string): ScsError {
  const shown = pids.slice(0, 5).map((p) => formatPid(p));
  const more = pids.length > shown.length ? ` and ${pids.length - shown.length} more` : '';
  return new ScsError(
    'SCS_PSK_CONFLICT',
    `${where}: PID ${shown.join(', ')}${more} already exist here with a different PPS; nothing was imported`,
    { details: { conflicts: pids.length, first: shown[0] ?? null } },
  );
}

/** Inserts one chunk in the caller's transaction; a conflicting PPS aborts the whole import. */
export async function insertChunk(
  tx: Store,
  rows: readonly NewPsk[],
  options: ImportOptions,
  detail: Readonly<Record<string, string | number | boolean | null>>,
): Promise<{ inserted: number; duplicates: number }> {
  if (rows.length === 0) return { inserted: 0, duplicates: 0 };
  options.signal?.throwIfAborted();
  const r = await tx.psks.insertMany(rows, { actor: options.actor, source: 'import', detail });
  if (r.conflicts.length > 0) throw conflictError(r.conflicts, options.fileName);
  return { inserted: r.inserted, duplicates: r.duplicates.length };
}
