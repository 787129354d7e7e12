/**
 * PID/PPS pairs as CSV (docs/formats.md, "CSV"). Export writes the dashed display forms of
 * protocol.md §2 with CRLF line ends (RFC 4180); import is a streaming decoder that accepts the
 * bytes split anywhere and is tolerant of what spreadsheets and people do to such files.
 */
import { ScsError } from '../../errors.ts';
import { Secret } from '../../secret.ts';
import { formatPid, parsePid, PID_LENGTH } from '../pid.ts';
import { formatPps, isValidPps, parsePps, PPS_LENGTH } from '../pps.ts';
import { canonicalPid, canonicalPps } from './canonical.ts';
import type { PskPair } from './pair.ts';

export const CSV_HEADER = 'PID,PPS';
/** RFC 4180 line end; the decoder accepts LF as well. */
export const CSV_EOL = '\r\n';
/** Longest line the decoder buffers (without its line end). A PID,PPS line is 49 bytes. */
export const CSV_MAX_LINE_BYTES = 1024;

/** `XXXX-XXXX` + `,` + 39-character PPS + CRLF. */
const ROW_BYTES = PID_LENGTH + 1 + 1 + PPS_LENGTH + 7 + CSV_EOL.length;
const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const EMPTY = Buffer.alloc(0);

export function encodeCsvHeader(): Buffer {
  return Buffer.from(CSV_HEADER + CSV_EOL, 'latin1');
}

/** One Buffer with a `PID,PPS` line per pair, for streaming an export batch by batch. */
export function encodeCsvRows(pairs: readonly PskPair[]): Buffer {
  const out = Buffer.allocUnsafe(pairs.length * ROW_BYTES);
  let at = 0;
  for (const pair of pairs) {
    const pps = pair.pps.reveal();
    if (canonicalPid(pair.pid) === undefined || canonicalPps(pps) === undefined) {
      throw new ScsError(
        'SCS_FORMAT_INPUT_INVALID',
        'CSV: a PID or PPS handed to the encoder is not a valid value in canonical form',
      );
    }
    at += out.write(formatPid(pair.pid), at, 'latin1');
    out[at++] = 0x2c;
    at += out.write(formatPps(pps), at, 'latin1');
    at += out.write(CSV_EOL, at, 'latin1');
  }
  return out;
}

export interface CsvRow extends PskPair {
  /** 1-based line number in the file (blank and header lines count). */
  readonly line: number;
  /** The batch column, when the file has one (docs/formats.md); trimmed, never empty. */
  readonly batch?: string;
}

interface Columns {
  readonly pid: number;
  readonly pps: number;
  readonly batch: number;
  readonly fromHeader: boolean;
}

function malformed(line: number, what: string): ScsError {
  return new ScsError('SCS_CSV_MALFORMED', `CSV line ${line}: ${what}`, { details: { line } });
}

function isSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t';
}

/**
 * Splits one line into trimmed fields. Fields may be quoted ("..." with "" for a quote) and
 * surrounded by spaces; a quoted field cannot span lines. Messages name the field, never its text.
 */
function splitFields(text: string, line: number): string[] {
  const fields: string[] = [];
  const n = text.length;
  let i = 0;
  for (;;) {
    while (isSpace(text[i])) i++;
    if (text[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q === -1) throw malformed(line, `field ${fields.length + 1} opens a quote that is not closed on this line`);
        value += text.slice(i, q);
        if (text[q + 1] === '"') {
          value += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      while (isSpace(text[i])) i++;
      if (i < n && text[i] !== ',') {
        throw malformed(line, `field ${fields.length + 1} has characters after its closing quote`);
      }
      fields.push(value.trim());
    } else {
      const comma = text.indexOf(',', i);
      const end = comma === -1 ? n : comma;
      fields.push(text.slice(i, end).trim());
      i = end;
    }
    if (i >= n) return fields;
    i++; // the comma
  }
}

/**
 * Streaming CSV import: `push` any split of the bytes, then `end`. Each call returns the rows
 * completed so far. Throws `SCS_CSV_MALFORMED` naming the line and what is wrong; a PPS (or
 * anything that might be one) is never quoted.
 */
export class CsvDecoder {
  #pending: Buffer = EMPTY;
  #bomChecked = false;
  #line = 0;
  #columns: Columns | undefined;
  #ended = false;

  push(chunk: Buffer): CsvRow[] {
    if (this.#ended) throw new Error('CsvDecoder.push called after end()');
    const rows: CsvRow[] = [];
    let bytes = chunk;
    if (!this.#bomChecked) {
      bytes = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
      this.#pending = EMPTY;
      if (bytes.length < UTF8_BOM.length && UTF8_BOM.subarray(0, bytes.length).equals(bytes)) {
        // Could still become a BOM: wait for more bytes (at most 2 are held).
        this.#pending = Buffer.from(bytes);
        return rows;
      }
      this.#bomChecked = true;
      if (bytes.subarray(0, UTF8_BOM.length).equals(UTF8_BOM)) bytes = bytes.subarray(UTF8_BOM.length);
    }
    let start = 0;
    if (this.#pending.length > 0) {
      const nl = bytes.indexOf(0x0a);
      if (nl === -1) {
        this.#hold(this.#pending, bytes);
        return rows;
      }
      this.#checkLength(this.#pending.length + nl);
      this.#takeLine(Buffer.concat([this.#pending, bytes.subarray(0, nl)]), rows);
      this.#pending = EMPTY;
      start = nl + 1;
    }
    for (;;) {
      const nl = bytes.indexOf(0x0a, start);
      if (nl === -1) break;
      this.#checkLength(nl - start);
      this.#takeLine(bytes.subarray(start, nl), rows);
      start = nl + 1;
    }
    if (start < bytes.length) this.#hold(EMPTY, bytes.subarray(start));
    return rows;
  }

  /** The last line may lack a line end. Returns its row, if any. */
  end(): CsvRow[] {
    if (this.#ended) return [];
    this.#ended = true;
    const rows: CsvRow[] = [];
    if (this.#pending.length > 0) this.#takeLine(this.#pending, rows);
    this.#pending = EMPTY;
    return rows;
  }

  #hold(head: Buffer, tail: Buffer): void {
    this.#checkLength(head.length + tail.length);
    // Copy, so a large pushed chunk is not kept alive by a short unfinished line.
    this.#pending = Buffer.concat([head, tail]);
  }

  #checkLength(length: number): void {
    if (length > CSV_MAX_LINE_BYTES) {
      throw malformed(this.#line + 1, `line is longer than ${CSV_MAX_LINE_BYTES} bytes`);
    }
  }

  #takeLine(raw: Buffer, rows: CsvRow[]): void {
    const line = ++this.#line;
    const text = raw.toString('utf8');
    if (text.trim() === '') return;
    const fields = splitFields(text.endsWith('\r') ? text.slice(0, -1) : text, line);
    const lower = fields.map((f) => f.toLowerCase());
    if (this.#columns === undefined) {
      const pid = lower.indexOf('pid');
      if (pid !== -1) {
        const pps = lower.indexOf('pps');
        if (pps === -1) throw malformed(line, 'the header names a PID column but no PPS column');
        this.#columns = { pid, pps, batch: lower.indexOf('batch'), fromHeader: true };
        return;
      }
      this.#columns = { pid: 0, pps: 1, batch: 2, fromHeader: false };
    } else if (this.#columns.fromHeader && lower[this.#columns.pid] === 'pid' && lower[this.#columns.pps] === 'pps') {
      return; // the header repeated, as in concatenated exports
    }
    rows.push(parseRow(fields, this.#columns, line));
  }
}

function parseRow(fields: readonly string[], columns: Columns, line: number): CsvRow {
  const needed = Math.max(columns.pid, columns.pps) + 1;
  if (fields.length < needed) {
    throw malformed(line, `expected at least ${needed} comma-separated fields (PID,PPS), found ${fields.length}`);
  }
  const pidText = fields[columns.pid] ?? '';
  const ppsText = fields[columns.pps] ?? '';
  if (pidText === '') throw malformed(line, 'the PID field is empty');
  // A field of another length may be a misplaced PPS: describe it, never quote it.
  if (pidText.length !== PID_LENGTH && pidText.length !== PID_LENGTH + 1) {
    throw malformed(line, `the PID field has ${pidText.length} characters, expected 8 (or 9 as XXXX-XXXX)`);
  }
  let pid;
  try {
    pid = parsePid(pidText);
  } catch (e) {
    const why = e instanceof ScsError ? e.message : 'PID is invalid';
    // parsePid quotes its input. Pass that on only when the PPS column holds a valid PPS: otherwise
    // the "PID" may be a fragment of a passphrase cut by a stray comma, so drop the quote.
    throw malformed(line, isValidPps(ppsText) ? why : why.replace(/^PID ".*" is invalid:/s, 'PID is invalid:'));
  }
  if (ppsText === '') throw malformed(line, 'the PPS field is empty');
  let pps;
  try {
    pps = parsePps(ppsText);
  } catch (e) {
    // parsePps names positions and groups only (protocol.md §2), so its message is safe to pass on.
    throw malformed(line, e instanceof ScsError ? e.message : 'PPS is invalid');
  }
  const batch = columns.batch === -1 ? '' : (fields[columns.batch] ?? '');
  const row = { line, pid, pps: new Secret(pps) };
  return batch === '' ? row : { ...row, batch };
}
