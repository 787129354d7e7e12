import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FleetSummary } from '../../simulator/fleet/fleet.ts';
import { startStandInScs, type StandInScs } from '../../test/peers/stand-in-scs.ts';
import { isScsError } from '../errors.ts';
import { generatePid, generatePps } from '../psk/generate.ts';
import { formatPid } from '../psk/pid.ts';
import { formatPps } from '../psk/pps.ts';
import type { Io } from './io.ts';
import { buildProgram } from './program.ts';

function capture(): Io & { outs: string[]; errs: string[]; code: number } {
  const io = {
    outs: [] as string[],
    errs: [] as string[],
    code: 0,
    isTty: false,
    out: (line: string) => io.outs.push(line),
    err: (line: string) => io.errs.push(line),
    setExitCode: (code: number) => (io.code = code),
  };
  return io;
}

async function run(io: Io, ...args: string[]): Promise<void> {
  await buildProgram(io).parseAsync(['node', 'amt-scs', ...args]);
}

interface Setup {
  csv: string;
  scs: StandInScs;
}

describe('amt-scs sim', () => {
  let dir: string;
  const opened: StandInScs[] = [];

  /** A PSK file of 5 fresh pairs and a stand-in SCS holding them. */
  async function setup(name: string): Promise<Setup> {
    const psks = Array.from({ length: 5 }, () => ({ pid: generatePid(), pps: generatePps() }));
    const csv = path.join(dir, `${name}.csv`);
    await writeFile(csv, ['PID,PPS', ...psks.map((p) => `${formatPid(p.pid)},${formatPps(p.pps)}`)].join('\r\n'));
    // Devices listen on the real AMT ports 16993/16992, each on its own 127.x address.
    const scs = await startStandInScs({
      psks: new Map(psks.map((p) => [p.pid, p.pps])),
      tlsPortOf: () => 16993,
      password: 'Sim-Pa55!',
    });
    opened.push(scs);
    return { csv, scs };
  }

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'amt-sim-cli-'));
  });
  after(async () => {
    for (const s of opened) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('exits 0 with a JSON summary once every device is configured, the state file says so', async () => {
    const { csv, scs } = await setup('ok');
    const io = capture();
    const stateFile = path.join(dir, 'state.json');
    await run(
      io,
      'sim',
      '--devices',
      '4',
      '--scs',
      `127.0.0.1:${scs.port}`,
      '--psk-file',
      csv,
      '--mebx-password',
      'Sim-Pa55!',
      '--time-factor',
      '0.0005',
      '--address-base',
      '127.207.0.1',
      '--key-pool',
      '0',
      '--deadline',
      '60',
      '--state-file',
      stateFile,
      '--json',
    );
    assert.equal(io.code, 0, io.errs.join('\n'));
    const summary = JSON.parse(io.outs.join('\n')) as FleetSummary;
    assert.equal(summary.allProvisioned, true);
    assert.equal(summary.provisioned, 4);
    assert.equal(summary.counts.post, 4);
    assert.deepEqual(summary.notProvisioned, []);
    assert.ok(io.errs.some((l) => /^sim: 4 devices listening from 127\.207\.0\.1 to 127\.207\.0\.4/.test(l)));
    assert.ok(io.errs.some((l) => /^sim: 4 devices \| Post 4 \| In 0/.test(l)));
    const file = JSON.parse(await readFile(stateFile, 'utf8')) as {
      running: boolean;
      devices: { state: string; tlsPort: number }[];
    };
    assert.equal(file.running, false);
    assert.deepEqual(
      file.devices.map((d) => [d.state, d.tlsPort]),
      Array.from({ length: 4 }, () => ['Post', 16993]),
    );
  });

  it('exits 1 when the deadline passes, naming the device that was not configured', async () => {
    const { csv, scs } = await setup('deadline');
    const io = capture();
    await run(
      io,
      'sim',
      '--devices',
      '5',
      '--scs',
      `127.0.0.1:${scs.port}`,
      '--psk-file',
      csv,
      '--mebx-password',
      'Sim-Pa55!',
      '--faults',
      'wrong-psk:20%',
      '--time-factor',
      '0.0005',
      '--address-base',
      '127.208.0.1',
      '--key-pool',
      '0',
      '--deadline',
      '3',
    );
    assert.equal(io.code, 1);
    assert.ok(io.errs.some((l) => /deadline of 3 s passed/.test(l)));
    assert.match(io.outs[0] ?? '', /^4 of 5 devices provisioned/);
    const line = io.outs.find((l) => l.startsWith('not provisioned:'));
    assert.match(line ?? '', /In, hello idle \(\d+ sent\), TLS handshake failed: .*, faults wrong-psk:20%$/);
  });

  it('refuses to start without a PSK file', async () => {
    await assert.rejects(run(capture(), 'sim', '--devices', '2'), (e) => isScsError(e, 'SCS_SIM_CONFIG_INVALID'));
  });

  it('refuses a fault spec it cannot parse, naming the clause', async () => {
    const { csv } = await setup('bad-faults');
    await assert.rejects(
      run(capture(), 'sim', '--devices', '2', '--psk-file', csv, '--faults', 'latency=1;boom:5%'),
      (e) => isScsError(e, 'SCS_SIM_CONFIG_INVALID') && /clause 2 "boom:5%"/.test(e.message),
    );
  });
});
