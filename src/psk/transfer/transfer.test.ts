import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isScsError, type ErrorCode } from '../../errors.ts';
import { Secret } from '../../secret.ts';
import { openStore } from '../../store/open.ts';
import type { PskWithPps, Store } from '../../store/store.ts';
import { decodeSetupBin, encodeSetupBin, SETUPBIN_CHUNK_BYTES } from '../formats/setupbin.ts';
import { generatePid, generatePps } from '../generate.ts';
import type { Pid } from '../pid.ts';
import { formatPps } from '../pps.ts';
import { exportPsks, exportPsksToFile, recoverPendingExports, type FileExportOptions } from './export.ts';
import { importPsks, IMPORT_CHUNK, type ImportOptions } from './import.ts';

/** Real scrypt at the smallest cost the bundle format accepts (2^15), so tests stay quick. */
const FAST_KDF = { log2N: 15, r: 8, p: 1 };
const PASS = new Secret('correct horse battery staple');
const actor = 'transfer-test';

interface Db {
  readonly dir: string;
  readonly file: string;
  store: Store;
}

let root: string;

async function openDb(name: string): Promise<Db> {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'scs.db');
  const { store } = await openStore({ db: `sqlite:${file}`, masterKeyFile: path.join(dir, 'master.key') });
  return { dir, file, store };
}

/** Row counts of every table and the audit chain head: "nothing changed" means all equal. */
function snapshot(db: Db): Record<string, number> {
  const raw = new Database(db.file, { readonly: true });
  try {
    const out: Record<string, number> = {};
    for (const t of ['psks', 'batches', 'audit_log', 'psk_exports', 'psk_export_records', 'psk_imports']) {
      out[t] = Number((raw.prepare(`select count(*) as n from ${t}`).get() as { n: number }).n);
    }
    out.states = Number(
      (raw.prepare(`select count(*) as n from psks where state <> 'available'`).get() as { n: number }).n,
    );
    return out;
  } finally {
    raw.close();
  }
}

async function allWithPps(store: Store): Promise<Map<string, PskWithPps>> {
  const m = new Map<string, PskWithPps>();
  for await (const r of store.psks.iterateWithPps({}, { actor, purpose: 'test' })) m.set(r.pid, r);
  return m;
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(isScsError(e, code), `expected ${code}, got ${String(e)}`);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

function tempFilesIn(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.partial'));
}

function generate(db: Db, count: number, batch: string): Promise<unknown> {
  const rows = Array.from({ length: count }, () => ({ pid: generatePid(), pps: new Secret(generatePps()), batch }));
  return db.store.psks.insertMany(rows, { actor, source: 'generate' });
}

function bundleOptions(extra: Partial<FileExportOptions> = {}): FileExportOptions {
  return { format: 'bundle', actor, bundle: { passphrase: PASS, kdfParams: FAST_KDF }, ...extra };
}

function importOptions(file: string, extra: Partial<ImportOptions> = {}): ImportOptions {
  return { actor, fileName: file, passphrase: PASS, ...extra };
}

/** What the BIOS does to the first `n` records (docs/formats.md): body zeroed, valid bit cleared, count raised. */
function biosConsume(bytes: Buffer, n: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 1; i <= n; i++) {
    const base = i * SETUPBIN_CHUNK_BYTES;
    out.fill(0, base + 24, base + SETUPBIN_CHUNK_BYTES);
    out.writeUInt32LE(out.readUInt32LE(base + 4) & ~1, base + 4);
  }
  out.writeUInt32LE(out.readUInt32LE(32) + n, 32);
  return out;
}

before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'scs-transfer-'));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('CSV export and import', () => {
  let a: Db;
  let b: Db;
  before(async () => {
    a = await openDb('csv-a');
    b = await openDb('csv-b');
    await generate(a, 40, 'lab');
  });
  after(async () => {
    await a.store.close();
    await b.store.close();
  });

  it('writes PID,PPS dashed into a 0600 file, marks the PSKs exported, audits the export and leaves no temp file', async () => {
    const out = path.join(a.dir, 'out.csv');
    const s = await exportPsksToFile(a.store, { format: 'csv', actor, batch: 'lab', count: 25 }, out);
    assert.equal(s.count, 25);
    assert.equal(s.stateChanged, 25);
    assert.equal(s.mode, 'exported');
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.deepEqual(tempFilesIn(a.dir), []);
    const text = readFileSync(out, 'latin1');
    assert.equal(s.sha256, createHash('sha256').update(readFileSync(out)).digest('hex'));
    const lines = text.split('\r\n').filter(Boolean);
    assert.equal(lines[0], 'PID,PPS');
    assert.equal(lines.length, 26);
    assert.deepEqual(await a.store.psks.countByState({ batch: 'lab' }), {
      available: 15,
      exported: 25,
      in_use: 0,
      consumed: 0,
      revoked: 0,
      transferred: 0,
    });
    const [entry] = await a.store.audit.list({ action: 'psk.export', limit: 1 });
    assert.equal(entry?.detail.format, 'csv');
    assert.equal(entry.detail.count, 25);
    assert.equal(entry.detail.file, out);
    assert.equal(entry.detail.batch, 'lab');
    const logged = await a.store.transfers.getExport(s.exportId);
    assert.equal(logged?.status, 'complete');
    assert.equal(logged.tempFile, null);
  });

  it('imports the CSV into a second database with the same PPS, the batch given and state exported', async () => {
    const out = path.join(a.dir, 'out.csv');
    const s = await importPsks(b.store, readFileSync(out), importOptions(out, { batch: 'lab' }));
    assert.equal(s.format, 'csv');
    assert.equal(s.outcome, 'imported');
    assert.equal(s.inserted, 25);
    const src = await allWithPps(a.store);
    const dst = await allWithPps(b.store);
    assert.equal(dst.size, 25);
    for (const [pid, r] of dst) {
      assert.equal(r.pps.reveal(), src.get(pid)?.pps.reveal());
      assert.equal(r.batch, 'lab');
      assert.equal(r.state, 'exported');
    }
  });

  it('says "nothing new" for a CSV whose pairs are all here with the same PPS, and changes nothing', async () => {
    const out = path.join(a.dir, 'out.csv');
    const before = snapshot(b);
    const s = await importPsks(b.store, readFileSync(out), importOptions(out, { batch: 'lab' }));
    assert.equal(s.outcome, 'nothing-new');
    assert.equal(s.inserted, 0);
    assert.equal(s.duplicates, 25);
    const afterwards = snapshot(b);
    // Only the one psk.import.file entry that records the attempt.
    assert.equal(afterwards.audit_log, (before.audit_log ?? 0) + 1);
    assert.deepEqual({ ...afterwards, audit_log: 0 }, { ...before, audit_log: 0 });
  });

  it('refuses an export when nothing matches (SCS_EXPORT_EMPTY) and writes no file', async () => {
    const rest = await exportPsksToFile(a.store, { format: 'csv', actor, batch: 'lab' }, path.join(a.dir, 'rest.csv'));
    assert.equal(rest.count, 15);
    const out = path.join(a.dir, 'empty.csv');
    const before = snapshot(a);
    await rejectsWith(exportPsksToFile(a.store, { format: 'csv', actor, batch: 'lab' }, out), 'SCS_EXPORT_EMPTY');
    assert.deepEqual(snapshot(a), before);
    assert.throws(() => statSync(out));
    assert.deepEqual(tempFilesIn(a.dir), []);
  });

  it('reports a source that cannot be read as SCS_FILE_IO, changing nothing', async () => {
    const before = snapshot(b);
    await rejectsWith(importPsks(b.store, createReadStream(b.dir), importOptions(b.dir)), 'SCS_FILE_IO', /EISDIR/);
    assert.deepEqual(snapshot(b), before);
  });

  it('refuses to replace an existing file unless asked to', async () => {
    const out = path.join(a.dir, 'out.csv');
    await rejectsWith(
      exportPsksToFile(a.store, { format: 'csv', actor, state: 'exported' }, out),
      'SCS_FILE_IO',
      /exists already/,
    );
    const s = await exportPsksToFile(a.store, { format: 'csv', actor, state: 'exported', overwrite: true }, out);
    assert.equal(s.count, 40);
    assert.equal(s.stateChanged, 0);
  });
});

describe('import rejections change nothing', () => {
  let a: Db;
  let b: Db;
  let bundle: Buffer;
  let csv: Buffer;
  /** More than one insert chunk, so rows are in the transaction when the failure comes. */
  const N = IMPORT_CHUNK + 50;
  before(async () => {
    a = await openDb('rej-a');
    b = await openDb('rej-b');
    await generate(a, N, 'big');
    const sink: Buffer[] = [];
    await exportPsks(a.store, { ...bundleOptions(), fileName: 'big.bundle' }, async (c) => {
      sink.push(Buffer.from(c));
      return Promise.resolve();
    });
    bundle = Buffer.concat(sink);
    const csvParts: Buffer[] = [];
    const pass = new PassThrough();
    pass.on('data', (c: Buffer) => csvParts.push(c));
    await exportPsks(a.store, { format: 'csv', actor, fileName: 'big.csv', state: 'available' }, pass);
    pass.end();
    csv = Buffer.concat(csvParts);
    // Something already in B, so "unchanged" is checked against a non-empty database.
    await generate(b, 10, 'own');
  });
  after(async () => {
    await a.store.close();
    await b.store.close();
  });

  const cases: [string, () => Buffer, ErrorCode, Partial<ImportOptions>?][] = [
    ['a wrong passphrase', () => bundle, 'SCS_BUNDLE_AUTH_FAILED', { passphrase: new Secret('not the passphrase!') }],
    [
      'a bundle with one flipped byte in its last chunk',
      () => {
        const x = Buffer.from(bundle);
        x[x.length - 40] = (x[x.length - 40] as number) ^ 0x01;
        return x;
      },
      'SCS_BUNDLE_AUTH_FAILED',
    ],
    ['a truncated bundle', () => bundle.subarray(0, bundle.length - 1000), 'SCS_BUNDLE_MALFORMED'],
    [
      'a CSV whose last line has a bad check character',
      () => {
        const text = csv.toString('latin1');
        const last = text.lastIndexOf('\r\n', text.length - 3) + 2;
        const line = text.slice(last);
        const bad = line[8] === 'A' ? 'B' : 'A';
        return Buffer.from(text.slice(0, last) + line.slice(0, 8) + bad + line.slice(9), 'latin1');
      },
      'SCS_CSV_MALFORMED',
    ],
    [
      'a CSV whose last pair names a PID that exists here with another PPS',
      () => Buffer.from(csv.toString('latin1') + `${ownPid},${formatPps(generatePps())}\r\n`, 'latin1'),
      'SCS_PSK_CONFLICT',
    ],
  ];
  let ownPid: Pid;
  for (const [what, bytes, code, extra] of cases) {
    it(`rejects ${what} as a whole (${code}) and leaves the database unchanged`, async () => {
      const [own] = await b.store.psks.list({ batch: 'own', limit: 1 });
      assert.ok(own);
      ownPid = own.pid;
      const before = snapshot(b);
      await rejectsWith(importPsks(b.store, bytes(), importOptions('f', { batch: 'x', ...extra })), code);
      assert.deepEqual(snapshot(b), before);
      assert.equal((await b.store.audit.verify()).ok, true);
    });
  }

  it('names the conflicting PID in the error but never a PPS', async () => {
    const [own] = await b.store.psks.list({ batch: 'own', limit: 1 });
    assert.ok(own);
    const pps = formatPps(generatePps());
    await assert.rejects(
      importPsks(b.store, Buffer.from(`PID,PPS\n${own.pid},${pps}\n`), importOptions('c.csv')),
      (e) => {
        assert.ok(isScsError(e, 'SCS_PSK_CONFLICT'));
        assert.match(e.message, new RegExp(own.pid.slice(0, 4)));
        assert.ok(!e.message.includes(pps) && !e.message.includes(pps.replaceAll('-', '')));
        return true;
      },
    );
  });
});

describe('transfer bundle', () => {
  let a: Db;
  let b: Db;
  let c: Db;
  before(async () => {
    a = await openDb('bundle-a');
    b = await openDb('bundle-b');
    c = await openDb('bundle-c');
    await generate(a, 30, 'north');
    await generate(a, 20, 'south');
    const [first] = await a.store.psks.list({ batch: 'south', limit: 5 });
    assert.ok(first);
    await a.store.psks.transition({ pids: [first.pid], from: ['available'], to: 'exported', actor });
  });
  after(async () => {
    for (const db of [a, b, c]) await db.store.close();
  });

  it('refuses a short passphrase (SCS_PASSPHRASE_WEAK) and an empty one before writing anything', async () => {
    const out = path.join(a.dir, 'weak.bundle');
    await rejectsWith(
      exportPsksToFile(a.store, { format: 'bundle', actor, bundle: { passphrase: new Secret('short') } }, out),
      'SCS_PASSPHRASE_WEAK',
    );
    await rejectsWith(
      exportPsksToFile(a.store, { format: 'bundle', actor, bundle: { passphrase: new Secret('') } }, out),
      'SCS_PASSPHRASE_MISSING',
    );
    assert.throws(() => statSync(out));
    assert.deepEqual(tempFilesIn(a.dir), []);
  });

  it('copies every PSK with its PPS, batch, state and creation time, leaving the source unchanged', async () => {
    const out = path.join(a.dir, 'copy.bundle');
    const before = await a.store.psks.countByState();
    const s = await exportPsksToFile(a.store, bundleOptions(), out);
    assert.equal(s.mode, 'copy');
    assert.equal(s.count, 50);
    assert.equal(s.stateChanged, 0);
    assert.deepEqual(await a.store.psks.countByState(), before);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.deepEqual(tempFilesIn(a.dir), []);
    const r = await importPsks(b.store, readFileSync(out), importOptions(out));
    assert.equal(r.format, 'bundle');
    assert.equal(r.outcome, 'imported');
    assert.equal(r.inserted, 50);
    assert.equal(r.format === 'bundle' ? r.bundleId : '', s.bundleId);
    const src = await allWithPps(a.store);
    const dst = await allWithPps(b.store);
    assert.equal(dst.size, 50);
    for (const [pid, got] of dst) {
      const want = src.get(pid);
      assert.ok(want);
      assert.equal(got.pps.reveal(), want.pps.reveal());
      assert.equal(got.batch, want.batch);
      assert.equal(got.state, want.state);
      assert.equal(got.createdAt.getTime(), want.createdAt.getTime());
    }
  });

  it('treats the same bundle imported again as a no-op that says so', async () => {
    const out = path.join(a.dir, 'copy.bundle');
    const before = snapshot(b);
    const r = await importPsks(b.store, readFileSync(out), importOptions(out));
    assert.equal(r.outcome, 'already-imported');
    assert.equal(r.format === 'bundle' ? r.previous?.inserted : undefined, 50);
    assert.deepEqual(snapshot(b), before);
  });

  it('with move marks the exported PSKs transferred here, in the same step as the file', async () => {
    const out = path.join(a.dir, 'move.bundle');
    const s = await exportPsksToFile(
      a.store,
      bundleOptions({ batch: 'south', bundle: { passphrase: PASS, kdfParams: FAST_KDF, move: true } }),
      out,
    );
    assert.equal(s.mode, 'move');
    assert.equal(s.count, 20);
    assert.equal(s.stateChanged, 20);
    const counts = await a.store.psks.countByState({ batch: 'south' });
    assert.equal(counts.transferred, 20);
    assert.equal(counts.available + counts.exported, 0);
    const r = await importPsks(c.store, readFileSync(out), importOptions(out));
    assert.equal(r.inserted, 20);
    const inC = await c.store.psks.countByState({ batch: 'south' });
    assert.equal(inC.available, 19);
    assert.equal(inC.exported, 1);
    // Nothing left to move: the next move of that batch is empty.
    await rejectsWith(
      exportPsksToFile(
        a.store,
        bundleOptions({ batch: 'south', bundle: { passphrase: PASS, kdfParams: FAST_KDF, move: true } }),
        path.join(a.dir, 'again.bundle'),
      ),
      'SCS_EXPORT_EMPTY',
    );
  });

  it('streams to a Writable sink (the REST API path) and reads back from a Readable', async () => {
    const pass = new PassThrough();
    const parts: Buffer[] = [];
    pass.on('data', (x: Buffer) => parts.push(x));
    const s = await exportPsks(a.store, { ...bundleOptions({ batch: 'north' }), fileName: 'download.bundle' }, pass);
    pass.end();
    const bytes = Buffer.concat(parts);
    assert.equal(bytes.length, s.bytes);
    const fresh = await openDb('bundle-d');
    try {
      const src = new PassThrough();
      src.end(bytes);
      const r = await importPsks(fresh.store, src, importOptions('upload.bundle'));
      assert.equal(r.inserted, 30);
    } finally {
      await fresh.store.close();
    }
  });

  it('finishes an export whose rename failed after the commit: the file was kept under its temp name', async () => {
    const out = path.join(a.dir, 'blocked.bundle');
    mkdirSync(out);
    writeFileSync(path.join(out, 'x'), 'occupied');
    await rejectsWith(
      exportPsksToFile(a.store, bundleOptions({ batch: 'north', overwrite: true }), out),
      'SCS_FILE_IO',
      /committed/,
    );
    const [pending] = await a.store.transfers.pendingExports();
    assert.ok(pending?.tempFile);
    assert.equal(statSync(pending.tempFile).mode & 0o777, 0o600);
    rmSync(out, { recursive: true });
    const recovered = await recoverPendingExports(a.store);
    assert.deepEqual(recovered, [{ exportId: pending.id, file: out, outcome: 'renamed' }]);
    assert.equal(createHash('sha256').update(readFileSync(out)).digest('hex'), pending.sha256);
    assert.deepEqual(await a.store.transfers.pendingExports(), []);
    assert.deepEqual(tempFilesIn(a.dir), []);
  });
});

describe('setup.bin export and reconciliation', () => {
  let a: Db;
  let b: Db;
  const mebx = { currentMebxPassword: new Secret('admin'), newMebxPassword: new Secret('P@ssw0rd-new') };
  before(async () => {
    a = await openDb('usb-a');
    b = await openDb('usb-b');
    await generate(a, 12, 'usb');
  });
  after(async () => {
    await a.store.close();
    await b.store.close();
  });

  it('writes a scrambled format-2 file with host names, logs record number -> PID and marks the PSKs exported', async () => {
    const out = path.join(a.dir, 'setup.bin');
    const s = await exportPsksToFile(
      a.store,
      {
        format: 'setup-bin',
        actor,
        count: 5,
        setupBin: { ...mebx, hostNamePattern: 'pc-{n:3}', domainName: 'lab.example' },
      },
      out,
    );
    assert.equal(s.setupBinVersion, 2);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    const file = decodeSetupBin(readFileSync(out));
    assert.equal(file.recordCount, 5);
    assert.equal(file.minorVersion, 1);
    const log = await a.store.transfers.exportRecords(s.exportId, [1, 2, 3, 4, 5]);
    for (const r of file.records) {
      assert.equal(r.scrambled, true);
      assert.equal(r.hostName, `pc-${String(r.number).padStart(3, '0')}`);
      assert.equal(r.pid, log[r.number - 1]?.pid);
      assert.equal((await a.store.psks.get(r.pid as Pid))?.state, 'exported');
    }
  });

  it('reconciles a key on which the BIOS consumed records: reports their PIDs from the log and audits them', async () => {
    const out = path.join(a.dir, 'setup.bin');
    const [exp] = await a.store.transfers.findExportsBySha256(
      createHash('sha256').update(readFileSync(out)).digest('hex'),
    );
    assert.ok(exp);
    const log = await a.store.transfers.exportRecords(exp.id, [1, 2, 3, 4, 5]);
    const used = biosConsume(readFileSync(out), 2);
    const before = await a.store.psks.countByState({ batch: 'usb' });
    const r = await importPsks(a.store, used, importOptions('usb-key/setup.bin'));
    assert.equal(r.format, 'setup-bin');
    if (r.format !== 'setup-bin') return;
    assert.equal(r.outcome, 'reconciled');
    assert.equal(r.exportId, exp.id);
    assert.deepEqual(
      r.consumed.map((x) => [x.number, x.pid, x.state]),
      [
        [1, log[0]?.pid, 'exported'],
        [2, log[1]?.pid, 'exported'],
      ],
    );
    assert.equal(r.unconsumed, 3);
    assert.equal(r.inserted, 0);
    assert.deepEqual(await a.store.psks.countByState({ batch: 'usb' }), before);
    const [entry] = await a.store.audit.list({ action: 'psk.setupbin.reconcile', limit: 1 });
    assert.deepEqual(entry?.pids, [log[0]?.pid, log[1]?.pid]);
    assert.equal(entry.detail.consumed, 2);
  });

  it('matches a fully consumed key by its format and record count when one export fits', async () => {
    const out = path.join(a.dir, 'setup.bin');
    const r = await importPsks(a.store, biosConsume(readFileSync(out), 5), importOptions('all-used.bin'));
    assert.equal(r.format === 'setup-bin' && r.consumed.every((x) => x.pid !== null), true);
    assert.equal(r.format === 'setup-bin' ? r.consumed.length : 0, 5);
  });

  it('refuses a key whose PIDs this server exported but whose format does not match the export', async () => {
    const out = path.join(a.dir, 'setup.bin');
    const file = decodeSetupBin(readFileSync(out));
    const pairs = await Promise.all(
      file.records.map(async (r) => ({
        pid: r.pid as Pid,
        pps: await a.store.psks.reveal(r.pid as Pid, { actor, purpose: 'test' }),
      })),
    );
    const v3 = encodeSetupBin(pairs, { version: 3, ...mebx });
    const before = snapshot(a);
    await rejectsWith(importPsks(a.store, v3, importOptions('v3.bin')), 'SCS_SETUPBIN_UNMATCHED');
    assert.deepEqual(snapshot(a), before);
  });

  it('imports the unconsumed pairs of a setup.bin this server did not write, like a CSV', async () => {
    const pairs = Array.from({ length: 4 }, () => ({ pid: generatePid(), pps: new Secret(generatePps()) }));
    const foreign = biosConsume(
      encodeSetupBin(pairs, { currentMebxPassword: new Secret('admin'), newMebxPassword: mebx.newMebxPassword }),
      1,
    );
    const r = await importPsks(b.store, foreign, importOptions('foreign.bin', { batch: 'found' }));
    assert.equal(r.format, 'setup-bin');
    if (r.format !== 'setup-bin') return;
    assert.equal(r.outcome, 'imported');
    assert.equal(r.exportId, null);
    assert.equal(r.inserted, 3);
    assert.deepEqual(r.consumed, [{ number: 1, pid: null, state: null }]);
    const got = await allWithPps(b.store);
    for (const p of pairs.slice(1)) {
      assert.equal(got.get(p.pid)?.pps.reveal(), p.pps.reveal());
      assert.equal(got.get(p.pid)?.state, 'exported');
      assert.equal(got.get(p.pid)?.batch, 'found');
    }
    assert.equal(got.has(pairs[0]?.pid ?? ''), false);
  });

  it('leaves no temp file and no state change when the setup.bin cannot be written', async () => {
    const before = snapshot(a);
    const out = path.join(a.dir, 'bad.bin');
    await rejectsWith(
      exportPsksToFile(
        a.store,
        { format: 'setup-bin', actor, count: 2, setupBin: { ...mebx, hostNamePattern: `${'x'.repeat(70)}{n}` } },
        out,
      ),
      'SCS_FORMAT_INPUT_INVALID',
    );
    assert.deepEqual(snapshot(a), before);
    assert.throws(() => statSync(out));
    assert.deepEqual(tempFilesIn(a.dir), []);
  });
});

describe('bundle import into SQLite', () => {
  let a: Db;
  let b: Db;
  before(async () => {
    a = await openDb('order-a');
    b = await openDb('order-b');
    // Two inserts: the bundle holds two runs, each in PID order, so the file is not.
    await generate(a, 6000, 'first');
    await generate(a, 6000, 'second');
  });
  after(async () => {
    await a.store.close();
    await b.store.close();
  });

  it('inserts the whole import in PID order (ids follow the PIDs across insert chunks), each PID audited once', async () => {
    const out = path.join(a.dir, 'order.bundle');
    await exportPsksToFile(a.store, bundleOptions(), out);
    const r = await importPsks(b.store, readFileSync(out), importOptions(out));
    assert.equal(r.format === 'bundle' ? r.inserted : 0, 12_000);
    const raw = new Database(b.file, { readonly: true });
    try {
      const pids = raw.prepare('select pid from psks order by id').pluck().all() as string[];
      assert.equal(pids.length, 12_000);
      assert.ok(
        pids.every((p, i) => i === 0 || (pids[i - 1] as string) < p),
        'ids in PID order across the whole import',
      );
      const audited = (
        raw.prepare("select pids from audit_log where action = 'psk.import'").pluck().all() as string[]
      ).flatMap((s) => s.split(','));
      assert.deepEqual([...audited].sort(), pids);
    } finally {
      raw.close();
    }
  });
});
