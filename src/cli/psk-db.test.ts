import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { parsePid } from '../psk/pid.ts';
import { parsePps, PPS_DISPLAY_LENGTH } from '../psk/pps.ts';

const CLI = fileURLToPath(new URL('../../amt-scs', import.meta.url));

interface Run {
  code: number;
  out: string;
  err: string;
}

/** Runs the real ./amt-scs in its own process, with no SCS_* settings from the caller's environment. */
function amtScs(dataDir: string, ...args: string[]): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SCS_')));
  return new Promise((resolve) => {
    execFile(CLI, ['--data-dir', dataDir, ...args], { env, timeout: 60_000 }, (error, out, err) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, out, err });
    });
  });
}

interface ListedPsk {
  pid: string;
  state: string;
  batch: string;
  pps?: string;
}

describe('amt-scs psk generate / list / revoke / stats and audit (real process)', () => {
  let dataDir: string;
  let pids: string[] = [];
  before(() => {
    dataDir = path.join(mkdtempSync(path.join(tmpdir(), 'scs-cli-')), 'data');
  });
  after(() => {
    rmSync(path.dirname(dataDir), { recursive: true, force: true });
  });

  it('generates PSKs into a batch, telling the operator on the first start where the master key is', async () => {
    const r = await amtScs(dataDir, 'psk', 'generate', '--count', '30', '--batch', 'lab-1');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^generated 30 PSKs in batch "lab-1" in \d+\.\d+ s\n$/);
    assert.match(r.err, new RegExp(`created master key ${path.join(dataDir, 'master.key')} \\(mode 0600\\)`));
    assert.match(r.err, /back it up/);
    const again = await amtScs(dataDir, 'psk', 'generate', '--count', '5');
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /^generated 5 PSKs in batch "gen-\d{8}-\d{6}"/);
    assert.doesNotMatch(again.err, /master key/);
  });

  it('lists PSKs as JSON without the PPS, and with it only under --reveal, each reveal audited', async () => {
    const r = await amtScs(dataDir, 'psk', 'list', '--batch', 'lab-1', '--json');
    assert.equal(r.code, 0, r.err);
    const rows = JSON.parse(r.out) as ListedPsk[];
    assert.equal(rows.length, 30);
    assert.ok(rows.every((x) => x.state === 'available' && x.batch === 'lab-1' && x.pps === undefined));
    assert.match(rows[0]?.pid ?? '', /^[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    pids = rows.map((x) => parsePid(x.pid));

    const shown = await amtScs(dataDir, 'psk', 'list', '--batch', 'lab-1', '--reveal', '--limit', '2', '--json');
    assert.equal(shown.code, 0, shown.err);
    const revealed = JSON.parse(shown.out) as ListedPsk[];
    assert.equal(revealed.length, 2);
    for (const x of revealed) {
      assert.equal(x.pps?.length, PPS_DISPLAY_LENGTH);
      parsePps(x.pps ?? '');
    }
    const audit = await amtScs(dataDir, 'audit', 'list', '--action', 'psk.reveal', '--json');
    const entries = JSON.parse(audit.out) as { pids: string[]; actor: string; detail: { purpose: string } }[];
    assert.equal(entries.length, 1);
    assert.deepEqual(
      entries[0]?.pids,
      revealed.map((x) => x.pid),
    );
    assert.match(entries[0]?.actor ?? '', /^cli:/);
    assert.equal(entries[0]?.detail.purpose, 'cli psk list');
    assert.ok(!audit.out.includes(revealed[0]?.pps ?? '-'));

    const table = await amtScs(dataDir, 'psk', 'list', '--state', 'available', '--limit', '3');
    assert.equal(table.code, 0, table.err);
    const lines = table.out.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^PID\s+STATE\s+BATCH\s+CREATED$/);
    assert.equal(lines.length, 4);
    assert.match(table.err, /3 PSKs/);
  });

  it('revokes PSKs, all or none, and shows them by state and in the stats', async () => {
    const [a, b, c] = pids;
    assert.ok(a && b && c);
    const r = await amtScs(
      dataDir,
      'psk',
      'revoke',
      a,
      `${b.slice(0, 4)}-${b.slice(4)}`.toLowerCase(),
      '--reason',
      'lost',
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'revoked 2 PSKs\n');
    const again = await amtScs(dataDir, 'psk', 'revoke', c, a);
    assert.equal(again.code, 1);
    assert.match(again.err, /^error SCS_PSK_STATE_INVALID: PSK .* is revoked; cannot change it to revoked/);
    assert.equal(again.err.trim().split('\n').length, 1);
    const revoked = JSON.parse(
      (await amtScs(dataDir, 'psk', 'list', '--state', 'revoked', '--json')).out,
    ) as ListedPsk[];
    assert.deepEqual(revoked.map((x) => parsePid(x.pid)).sort(), [a, b].sort());

    const stats = JSON.parse((await amtScs(dataDir, 'psk', 'stats', '--json')).out) as {
      batches: { name: string; counts: Record<string, number>; total: number }[];
      total: number;
    };
    assert.equal(stats.total, 35);
    const lab = stats.batches.find((x) => x.name === 'lab-1');
    assert.deepEqual([lab?.counts.available, lab?.counts.revoked, lab?.total], [28, 2, 30]);
    const table = await amtScs(dataDir, 'psk', 'stats');
    assert.match(
      table.out,
      /^BATCH\s+CREATED\s+available\s+exported\s+in_use\s+consumed\s+revoked\s+transferred\s+total$/m,
    );
    assert.match(table.out, /^TOTAL\s+33\s+0\s+0\s+0\s+2\s+0\s+35$/m);
  });

  it('answers bad input with one clear line and exit code 1', async () => {
    const cases: [string[], RegExp][] = [
      [['psk', 'revoke', 'NOT-APID'], /^error SCS_PID_INVALID: PID "NOT-APID" is invalid/],
      [
        ['psk', 'generate', '--count', '0'],
        /^error SCS_ARGUMENT_INVALID: --count must be a whole number 1\.\.10000000, got "0"/,
      ],
      [
        ['psk', 'generate', '--count', '5', '--batch', 'no spaces'],
        /^error SCS_ARGUMENT_INVALID: batch name "no spaces"/,
      ],
      [['psk', 'list', '--state', 'lost'], /^error SCS_ARGUMENT_INVALID: --state must be one of/],
      [['psk', 'list', '--batch', 'nope'], /^error SCS_BATCH_NOT_FOUND: no batch named "nope"/],
      [['psk', 'revoke', 'AAAAAAAN'], /^error SCS_PSK_NOT_FOUND: no PSK with PID AAAA-AAAN/],
    ];
    for (const [args, message] of cases) {
      const r = await amtScs(dataDir, ...args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, message);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
    }
  });

  it('verifies the audit chain, lists entries by PID, and names the seq of an edited entry', async () => {
    const ok = await amtScs(dataDir, 'audit', 'verify');
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /^audit chain verified: \d+ entries, head seq \d+, hash [0-9a-f]{64}\n$/);
    const a = pids[0] ?? '';
    const listed = await amtScs(dataDir, 'audit', 'list', '--pid', a);
    assert.equal(listed.code, 0, listed.err);
    const lines = listed.out.trimEnd().split('\n');
    // Generated, revealed by `psk list --reveal --limit 2`, revoked.
    assert.equal(lines.length, 3, listed.out);
    assert.match(lines[0] ?? '', /psk\.generate {2}30 PIDs: .* \+26 more {2}batch=lab-1 count=30$/);
    assert.match(lines[1] ?? '', /psk\.reveal {2}2 PIDs: .*purpose=cli psk list count=2$/);
    assert.match(lines[2] ?? '', /psk\.state {2}2 PIDs: .*reason=lost from=available to=revoked$/);

    const db = new Database(path.join(dataDir, 'scs.db'));
    db.exec(`drop trigger audit_log_no_update; update audit_log set actor = 'mallory' where seq = 2`);
    db.close();
    const broken = await amtScs(dataDir, 'audit', 'verify');
    assert.equal(broken.code, 1);
    assert.match(broken.err, /^error SCS_AUDIT_CHAIN_BROKEN: audit chain broken at seq 2: hash does not match/);
  });

  it('refuses to start with a wrong master key', async () => {
    writeFileSync(path.join(dataDir, 'master.key'), randomBytes(32).toString('hex'));
    const r = await amtScs(dataDir, 'psk', 'stats');
    assert.equal(r.code, 1);
    assert.match(r.err, /^error SCS_MASTER_KEY_MISMATCH: the master key does not open data key 1/);
  });
});
