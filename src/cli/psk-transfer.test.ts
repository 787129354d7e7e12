import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeSetupBin, SETUPBIN_CHUNK_BYTES } from '../psk/formats/setupbin.ts';

const CLI = fileURLToPath(new URL('../../amt-scs', import.meta.url));
const PASSPHRASE = 'a long enough bundle passphrase';

interface Run {
  code: number;
  out: string;
  err: string;
}

/** Runs the real ./amt-scs with no SCS_* variables from the caller, plus `env`; stdin is not a TTY. */
function amtScs(dataDir: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SCS_')));
  return new Promise((resolve) => {
    const child = execFile(
      CLI,
      ['--data-dir', dataDir, ...args],
      { env: { ...base, ...env }, timeout: 60_000 },
      (error, out, err) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, out, err });
      },
    );
    child.stdin?.end();
  });
}

async function stats(dataDir: string): Promise<{ counts: Record<string, number>; total: number }> {
  const r = await amtScs(dataDir, ['psk', 'stats', '--json']);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as { counts: Record<string, number>; total: number };
}

describe('amt-scs psk export / import (real process)', () => {
  let root: string;
  let a: string;
  let b: string;
  let passFile: string;
  before(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'scs-cli-transfer-'));
    a = path.join(root, 'a');
    b = path.join(root, 'b');
    passFile = path.join(root, 'passphrase');
    writeFileSync(passFile, `${PASSPHRASE}\n`, { mode: 0o600 });
    writeFileSync(path.join(root, 'mebx'), 'admin\n', { mode: 0o600 });
    writeFileSync(path.join(root, 'mebx-new'), 'N3w-MEBx-pass\n', { mode: 0o600 });
    const g = await amtScs(a, ['psk', 'generate', '--count', '60', '--batch', 'site-1']);
    assert.equal(g.code, 0, g.err);
  });
  after(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('exports a CSV (0600, final line with count and path) and imports it into a second data directory', async () => {
    const out = path.join(root, 'tech.csv');
    const e = await amtScs(a, ['psk', 'export', '--format', 'csv', '--count', '10', '--out', out]);
    assert.equal(e.code, 0, e.err);
    assert.equal(e.out, `exported 10 PSKs (csv) to ${out}\n`);
    assert.match(e.err, /10 PSKs marked exported/);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.deepEqual(
      readdirSync(root).filter((f) => f.endsWith('.partial')),
      [],
    );
    const i = await amtScs(b, ['psk', 'import', out, '--batch', 'site-1']);
    assert.equal(i.code, 0, i.err);
    assert.match(i.out, /^imported 10 PSKs from .*tech\.csv \(10 lines, 0 already here\)\n$/);
    const again = await amtScs(b, ['psk', 'import', out, '--batch', 'site-1']);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /^nothing new: all 10 pairs/);
    assert.equal((await stats(b)).counts.exported, 10);
  });

  it('refuses a bundle export without a passphrase when no terminal can ask, and a short one', async () => {
    const out = path.join(root, 'none.bundle');
    const r = await amtScs(a, ['psk', 'export', '--format', 'bundle', '--out', out]);
    assert.equal(r.code, 1);
    assert.match(r.err, /error SCS_PASSPHRASE_MISSING: .*--passphrase-file FILE, env SCS_BUNDLE_PASSPHRASE/);
    const short = await amtScs(a, ['psk', 'export', '--format', 'bundle', '--out', out], {
      SCS_BUNDLE_PASSPHRASE: 'short',
    });
    assert.equal(short.code, 1);
    assert.match(short.err, /error SCS_PASSPHRASE_WEAK: the bundle passphrase has 5 characters; use at least 12/);
    assert.ok(!short.err.includes('short\n') && !short.err.includes('"short"'));
    assert.throws(() => statSync(out));
  });

  it('copies by bundle with a warning, moves with --move, and says so when the same bundle comes again', async () => {
    const copy = path.join(root, 'copy.bundle');
    const c = await amtScs(a, ['psk', 'export', '--format', 'bundle', '--out', copy], {
      SCS_BUNDLE_PASSPHRASE: PASSPHRASE,
    });
    assert.equal(c.code, 0, c.err);
    assert.match(c.err, /warning: this bundle is a copy: .*two servers could hand out the same PSK/);
    assert.equal(c.out, `exported 60 PSKs (bundle) to ${copy}\n`);
    assert.equal((await stats(a)).counts.transferred, 0);

    const moved = path.join(root, 'move.bundle');
    const m = await amtScs(a, [
      'psk',
      'export',
      '--format',
      'bundle',
      '--move',
      '--passphrase-file',
      passFile,
      '--out',
      moved,
    ]);
    assert.equal(m.code, 0, m.err);
    assert.match(m.err, /60 PSKs marked transferred here/);
    assert.equal((await stats(a)).counts.transferred, 60);

    const wrong = await amtScs(b, ['psk', 'import', moved], { SCS_BUNDLE_PASSPHRASE: 'not the right one at all' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /error SCS_BUNDLE_AUTH_FAILED/);
    assert.equal((await stats(b)).total, 10);

    const i = await amtScs(b, ['psk', 'import', moved, '--passphrase-file', passFile]);
    assert.equal(i.code, 0, i.err);
    assert.match(i.out, /^imported 50 PSKs from bundle [0-9a-f-]{36} \(".*", 60 records, 10 already here\)\n$/);
    const s = await stats(b);
    assert.equal(s.total, 60);
    const again = await amtScs(b, ['psk', 'import', moved, '--passphrase-file', passFile]);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /was imported before .*nothing changed/);
    assert.deepEqual(await stats(b), s);
  });

  it('writes a setup.bin from password files and reconciles it when it comes back', async () => {
    const out = path.join(root, 'setup.bin');
    const e = await amtScs(b, [
      'psk',
      'export',
      '--format',
      'setup-bin',
      '--count',
      '3',
      '--mebx-password-file',
      path.join(root, 'mebx'),
      '--new-mebx-password-file',
      path.join(root, 'mebx-new'),
      '--hostname-pattern',
      'ws-{n}',
      '--scs-address',
      '192.168.10.5',
      '--scs-port',
      '9971',
      '--out',
      out,
    ]);
    assert.equal(e.code, 0, e.err);
    assert.equal(e.out, `exported 3 PSKs (setup-bin) to ${out}\n`);
    assert.match(e.err, /setup\.bin format 2, export id [0-9a-f-]{36}/);
    const file = decodeSetupBin(readFileSync(out));
    assert.equal(file.records[2]?.hostName, 'ws-3');
    assert.equal(file.records[0]?.provisioningServerAddress, '192.168.10.5');
    assert.equal(file.records[0]?.newMebxPassword?.reveal(), 'N3w-MEBx-pass');
    // The BIOS consumes record 1: body zeroed, valid bit cleared, count raised.
    const used = Buffer.from(readFileSync(out));
    used.fill(0, SETUPBIN_CHUNK_BYTES + 24, 2 * SETUPBIN_CHUNK_BYTES);
    used.writeUInt32LE(used.readUInt32LE(SETUPBIN_CHUNK_BYTES + 4) & ~1, SETUPBIN_CHUNK_BYTES + 4);
    used.writeUInt32LE(1, 32);
    const back = path.join(root, 'back.bin');
    writeFileSync(back, used);
    const i = await amtScs(b, ['psk', 'import', back]);
    assert.equal(i.code, 0, i.err);
    assert.match(i.out, /^setup\.bin of export [0-9a-f-]{36}: 1 of 3 records consumed, 2 still on the key/);
    assert.match(i.err, new RegExp(`record 1: consumed, PID ${file.records[0]?.pid?.slice(0, 4) ?? '?'}-`));
  });

  it('refuses flags that do not belong to the format, and never takes a password as a flag value', async () => {
    const r = await amtScs(a, ['psk', 'export', '--format', 'csv', '--move', '--out', path.join(root, 'x.csv')]);
    assert.equal(r.code, 1);
    assert.match(r.err, /--move does not apply to --format csv/);
    const help = await amtScs(a, ['psk', 'export', '--help']);
    assert.doesNotMatch(help.out, /--passphrase <|--mebx-password </);
  });
});
