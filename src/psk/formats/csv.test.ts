import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isScsError } from '../../errors.ts';
import { Secret } from '../../secret.ts';
import { ALPHABET, checkChar } from '../checksum.ts';
import { generatePid, generatePps } from '../generate.ts';
import { formatPid, type Pid } from '../pid.ts';
import { formatPps, type Pps } from '../pps.ts';
import { CSV_MAX_LINE_BYTES, CsvDecoder, type CsvRow, encodeCsvHeader, encodeCsvRows } from './csv.ts';
import type { PskPair } from './pair.ts';

const symbol = fc.constantFrom(...ALPHABET.split(''));
const pidArb = fc.array(symbol, { minLength: 7, maxLength: 7 }).map((a) => {
  const body = a.join('');
  return (body + checkChar(body)) as Pid;
});
const ppsArb = fc
  .array(fc.array(symbol, { minLength: 3, maxLength: 3 }), { minLength: 8, maxLength: 8 })
  .map((groups) => groups.map((g) => g.join('') + checkChar(g.join(''))).join('') as Pps);
const pairArb = fc.record({ pid: pidArb, pps: ppsArb });

function pair(): PskPair {
  return { pid: generatePid(), pps: new Secret(generatePps()) };
}

function plain(rows: readonly CsvRow[]): { line: number; pid: string; pps: string; batch?: string }[] {
  return rows.map((r) => ({
    line: r.line,
    pid: r.pid,
    pps: r.pps.reveal(),
    ...(r.batch === undefined ? {} : { batch: r.batch }),
  }));
}

function decodeChunks(chunks: readonly Buffer[]): CsvRow[] {
  const d = new CsvDecoder();
  const rows: CsvRow[] = [];
  for (const c of chunks) rows.push(...d.push(c));
  rows.push(...d.end());
  return rows;
}

function decode(text: string | Buffer): CsvRow[] {
  return decodeChunks([typeof text === 'string' ? Buffer.from(text, 'utf8') : text]);
}

function errorOf(text: string | Buffer): { message: string; line: unknown } {
  try {
    decode(text);
  } catch (e) {
    assert.ok(isScsError(e, 'SCS_CSV_MALFORMED'), String(e));
    return { message: e.message, line: e.details['line'] };
  }
  assert.fail('expected SCS_CSV_MALFORMED');
}

/** No 8-character window of the passphrase (dashed or not) may appear in a message. */
function assertNoPps(message: string, pps: string): void {
  const raw = pps.replaceAll('-', '').toUpperCase();
  const upper = message.toUpperCase();
  for (let i = 0; i + 8 <= raw.length; i++) {
    assert.ok(!upper.includes(raw.slice(i, i + 8)), `message echoes the PPS: ${message}`);
  }
  assert.ok(!upper.includes(formatPps(raw as Pps).slice(0, 9)), `message echoes the PPS: ${message}`);
}

describe('CSV export', () => {
  it('writes a PID,PPS header and one CRLF line per pair in dashed display forms', () => {
    const pid = `ABCDEFG${checkChar('ABCDEFG')}` as Pid;
    const pps = ['000', '111', '222', 'XYZ', 'ABC', 'DEF', 'GHI', 'JKL'].map((g) => g + checkChar(g)).join('') as Pps;
    const bytes = Buffer.concat([encodeCsvHeader(), encodeCsvRows([{ pid, pps: new Secret(pps) }])]);
    assert.equal(bytes.toString('latin1'), `PID,PPS\r\nABCD-EFG${pid[7]},${(pps.match(/.{4}/g) ?? []).join('-')}\r\n`);
    assert.match(
      bytes.toString('latin1').split('\r\n')[1] ?? '',
      /^[0-9A-Z]{4}-[0-9A-Z]{4},([0-9A-Z]{4}-){7}[0-9A-Z]{4}$/,
    );
  });

  it('sizes each batch exactly: 51 bytes per pair, empty batch empty buffer', () => {
    assert.equal(encodeCsvRows([pair(), pair(), pair()]).length, 3 * 51);
    assert.equal(encodeCsvRows([]).length, 0);
  });

  it('refuses a value that is not in canonical form', () => {
    assert.throws(
      () => encodeCsvRows([{ pid: 'ABCD-EFGH' as Pid, pps: new Secret(generatePps()) }]),
      (e) => isScsError(e, 'SCS_FORMAT_INPUT_INVALID'),
    );
    assert.throws(
      () => encodeCsvRows([{ pid: generatePid(), pps: new Secret('A'.repeat(32) as Pps) }]),
      (e) => isScsError(e, 'SCS_FORMAT_INPUT_INVALID'),
    );
  });

  it('round-trips random pairs through export and import, streamed in random pieces', () => {
    fc.assert(
      fc.property(fc.array(pairArb, { maxLength: 30 }), fc.array(fc.nat(200), { maxLength: 8 }), (pairs, cuts) => {
        const file = Buffer.concat([
          encodeCsvHeader(),
          encodeCsvRows(pairs.map((p) => ({ pid: p.pid, pps: new Secret(p.pps) }))),
        ]);
        const points = [...new Set(cuts.map((c) => c % (file.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let at = 0;
        for (const p of points) {
          chunks.push(file.subarray(at, p));
          at = p;
        }
        chunks.push(file.subarray(at));
        const rows = decodeChunks(chunks);
        assert.deepEqual(
          rows.map((r) => [r.pid, r.pps.reveal()]),
          pairs.map((p) => [p.pid, p.pps]),
        );
        assert.deepEqual(
          rows.map((r) => r.line),
          pairs.map((_, i) => i + 2),
        );
      }),
    );
  });
});

describe('CSV import tolerances', () => {
  const a = pair();
  const b = pair();
  const aPid = formatPid(a.pid);
  const aPps = formatPps(a.pps.reveal());
  const bPps = b.pps.reveal();

  it('decodes the same rows from every split point of a file using every tolerance', () => {
    const text =
      '\uFEFF' +
      ' "pid" , "PPS", "Batch"\r\n' +
      '\r\n' +
      `  ${aPid.toLowerCase()} ,  "${aPps.toLowerCase()}"  ,"lab ""north"", rack 2"\r\n` +
      '   \n' +
      `${b.pid},${bPps},\n` +
      `"${b.pid}","${bPps}",spares`;
    const file = Buffer.from(text, 'utf8');
    const expected = [
      { line: 3, pid: a.pid, pps: a.pps.reveal(), batch: 'lab "north", rack 2' },
      { line: 5, pid: b.pid, pps: bPps },
      { line: 6, pid: b.pid, pps: bPps, batch: 'spares' },
    ];
    assert.deepEqual(plain(decode(file)), expected);
    for (let i = 0; i <= file.length; i++) {
      assert.deepEqual(plain(decodeChunks([file.subarray(0, i), file.subarray(i)])), expected, `split at ${i}`);
    }
    // byte by byte: the BOM and multi-byte text arrive in pieces
    assert.deepEqual(plain(decodeChunks([...file].map((x) => Buffer.from([x])))), expected);
  });

  it('reads a file without a header, taking column 3 as the batch and ignoring further columns', () => {
    const rows = decode(`${a.pid},${aPps},batch-7,ignored,also ignored\n${b.pid},${bPps}\n`);
    assert.deepEqual(plain(rows), [
      { line: 1, pid: a.pid, pps: a.pps.reveal(), batch: 'batch-7' },
      { line: 2, pid: b.pid, pps: bPps },
    ]);
  });

  it('finds the PID and PPS columns by header name in any order, ignoring unnamed extras', () => {
    const rows = decode(`note,PPS,pid\r\nx,${aPps},${aPid}\r\n`);
    assert.deepEqual(plain(rows), [{ line: 2, pid: a.pid, pps: a.pps.reveal() }]);
  });

  it('skips a repeated header line, as in concatenated exports', () => {
    const rows = decode(`PID,PPS\n${a.pid},${aPps}\nPID,PPS\n${b.pid},${bPps}\n`);
    assert.deepEqual(
      rows.map((r) => r.line),
      [2, 4],
    );
  });

  it('accepts LF, CRLF, a missing final line end, and an empty or header-only file', () => {
    assert.equal(decode(`${a.pid},${aPps}\n${b.pid},${bPps}\r\n`).length, 2);
    assert.equal(decode(`${a.pid},${aPps}`).length, 1);
    assert.equal(decode('').length, 0);
    assert.equal(decode('\uFEFF').length, 0);
    assert.equal(decode('PID,PPS\r\n\r\n').length, 0);
  });
});

describe('CSV import errors', () => {
  const a = pair();
  const aPps = formatPps(a.pps.reveal());

  it('names the line and quotes a bad PID (a PID is not secret)', () => {
    const badPid = a.pid.slice(0, 7) + (a.pid[7] === 'A' ? 'B' : 'A');
    const { message, line } = errorOf(`PID,PPS\n\n${a.pid},${aPps}\n${badPid},${aPps}\n`);
    assert.equal(line, 4);
    assert.match(message, /^CSV line 4: PID ".{8}" is invalid: check character/);
    assert.ok(message.includes(badPid));
    assertNoPps(message, aPps);
  });

  it('names the line and the PPS group without echoing the PPS', () => {
    const raw = a.pps.reveal();
    const bad = raw.slice(0, 15) + (raw[15] === '0' ? '1' : '0') + raw.slice(16);
    const { message, line } = errorOf(`${a.pid},${bad}\n`);
    assert.equal(line, 1);
    assert.match(message, /^CSV line 1: PPS is invalid: check character of group 4 is wrong$/);
    assertNoPps(message, bad);
  });

  it('never quotes a PPS that sits in the PID column (columns swapped)', () => {
    const { message, line } = errorOf(`${aPps},${a.pid}\n`);
    assert.equal(line, 1);
    assert.match(message, /the PID field has 39 characters/);
    assertNoPps(message, aPps);
  });

  it('does not quote a PID-sized piece of a PPS cut off by a stray comma', () => {
    // "0000-0000" is not a valid PID (its check character would be C), so the PID error comes first.
    const zeros = formatPps('0'.repeat(32) as Pps);
    const { message } = errorOf(`${zeros.slice(0, 9)},${zeros.slice(9)},${a.pid}\n`);
    assert.match(message, /^CSV line 1: PID is invalid: check character/);
    assertNoPps(message, zeros);
  });

  it('reports too few fields, empty fields and a header without a PPS column', () => {
    const semicolons = errorOf(`${a.pid};${aPps}\n`);
    assert.match(semicolons.message, /^CSV line 1: expected at least 2 comma-separated fields \(PID,PPS\), found 1$/);
    assertNoPps(semicolons.message, aPps);
    assert.match(errorOf(`PID,PPS\n,${aPps}\n`).message, /^CSV line 2: the PID field is empty$/);
    assert.match(errorOf(`${a.pid}, ""\n`).message, /^CSV line 1: the PPS field is empty$/);
    assert.match(errorOf('pid,secret\n').message, /^CSV line 1: the header names a PID column but no PPS column$/);
  });

  it('reports a quote left open and text after a closing quote', () => {
    const open = errorOf(`${a.pid},"${aPps}\n`);
    assert.match(open.message, /^CSV line 1: field 2 opens a quote that is not closed on this line$/);
    assertNoPps(open.message, aPps);
    const after = errorOf(`"${a.pid}"x,${aPps}\n`);
    assert.match(after.message, /^CSV line 1: field 1 has characters after its closing quote$/);
  });

  it('reports a PPS of the wrong length by length only', () => {
    const { message } = errorOf(`${a.pid},${aPps}-X\n`);
    assert.match(message, /^CSV line 1: PPS is invalid: expected 32 characters \(or 39 with dashes\), got 41$/);
    assertNoPps(message, aPps);
  });

  it('bounds the line it buffers, naming the line even when the bytes arrive in pieces', () => {
    const long = Buffer.alloc(CSV_MAX_LINE_BYTES + 1, 0x41);
    const d = new CsvDecoder();
    d.push(Buffer.from(`${a.pid},${aPps}\n`));
    d.push(long.subarray(0, 600));
    assert.throws(
      () => d.push(long.subarray(600)),
      (e) => isScsError(e, 'SCS_CSV_MALFORMED') && e.message === 'CSV line 2: line is longer than 1024 bytes',
    );
    assert.throws(
      () => decode(Buffer.concat([long, Buffer.from('\n')])),
      (e) => isScsError(e, 'SCS_CSV_MALFORMED') && e.details['line'] === 1,
    );
    // exactly at the bound (plus CRLF) is still a line
    const edge = Buffer.concat([Buffer.from(`${a.pid},${aPps},`), Buffer.alloc(CSV_MAX_LINE_BYTES - 49, 0x62)]);
    assert.equal(edge.length, CSV_MAX_LINE_BYTES);
    assert.equal(decode(Buffer.concat([edge, Buffer.from('\n')])).length, 1);
  });

  it('echoes no PPS in any error for randomly damaged lines', () => {
    fc.assert(
      fc.property(
        pairArb,
        fc.nat(60),
        fc.constantFrom(',', ';', '"', ' ', 'x', '-', '\t', ''),
        fc.boolean(),
        (p, at, insert, swap) => {
          const ppsShown = formatPps(p.pps);
          let line = swap ? `${ppsShown},${formatPid(p.pid)}` : `${formatPid(p.pid)},${ppsShown}`;
          const pos = at % (line.length + 1);
          line = line.slice(0, pos) + insert + line.slice(pos + (insert === '' ? 1 : 0));
          try {
            decode(`${line}\n`);
          } catch (e) {
            assert.ok(isScsError(e, 'SCS_CSV_MALFORMED'), String(e));
            assertNoPps(e.message, p.pps);
            assert.ok(!JSON.stringify(e.details).includes(p.pps.slice(0, 8)));
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
