import { readFile } from 'node:fs/promises';
import { ScsError } from '../../src/errors.ts';
import { CsvDecoder } from '../../src/psk/formats/csv.ts';
import type { PskPair } from '../../src/psk/formats/pair.ts';

/**
 * Reads the `PID,PPS` CSV the server exports (the pairs a technician would type into MEBx) with
 * the project's CSV codec: dashed or not, any case, optional header, quotes, CRLF or LF. Check
 * characters are verified as firmware does. Errors give the line number, never a PPS. A PID
 * listed twice is refused: two simulated devices must not share a PSK.
 */
export function parsePskCsv(bytes: Buffer): PskPair[] {
  const decoder = new CsvDecoder();
  const rows = [...decoder.push(bytes), ...decoder.end()];
  const seen = new Set<string>();
  for (const row of rows) {
    if (seen.has(row.pid)) {
      throw new ScsError('SCS_CSV_MALFORMED', `CSV line ${row.line}: PID ${row.pid} appears twice`, {
        details: { line: row.line },
      });
    }
    seen.add(row.pid);
  }
  return rows.map(({ pid, pps }) => ({ pid, pps }));
}

export async function readPskFile(file: string): Promise<PskPair[]> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (cause) {
    throw new ScsError('SCS_FILE_IO', `cannot read PSK file ${file}`, { cause });
  }
  try {
    return parsePskCsv(bytes);
  } catch (e) {
    if (e instanceof ScsError) throw new ScsError(e.code, `${file}: ${e.message}`, { cause: e, details: e.details });
    throw e;
  }
}
