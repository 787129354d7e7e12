import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isScsError } from '../../src/errors.ts';
import type { PskPair } from '../../src/psk/formats/pair.ts';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import { formatPid } from '../../src/psk/pid.ts';
import { formatPps } from '../../src/psk/pps.ts';
import { Secret } from '../../src/secret.ts';
import { startStandInScs, type StandInScs } from '../../test/peers/stand-in-scs.ts';
import { envelope } from '../../test/peers/helpers.ts';
import { TestWsmanClient } from '../../test/peers/wsman-client.ts';
import { parseHostPort, startFleet, type Fleet } from './fleet.ts';
import type { DeviceRecord } from './member.ts';

const PASSWORD = 'P@ssw0rd';

function makePsks(n: number): PskPair[] {
  return Array.from({ length: n }, () => ({ pid: generatePid(), pps: new Secret(generatePps()) }));
}

/** A stand-in SCS that configures the devices of `fleet()` (resolved lazily: the fleet starts after it). */
async function scsFor(psks: readonly PskPair[], fleet: () => Fleet | undefined): Promise<StandInScs> {
  return startStandInScs({
    psks: new Map(psks.map((p) => [p.pid, p.pps.reveal()])),
    tlsPortOf: (address) => fleet()?.devices.find((d) => d.address === address)?.tlsPort ?? undefined,
    password: PASSWORD,
  });
}

function isClosed(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond());
}

/** Live child processes of this one running the fleet worker (Linux /proc). */
function workerChildren(): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('fleet/worker')) {
        out.push(Number(entry));
      }
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('fleet of 50 devices in this process', () => {
  const N = 50;
  const psks = makePsks(N);
  let dir: string;
  let scs: StandInScs;
  let fleet: Fleet | undefined;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'amt-sim-fleet-'));
    scs = await scsFor(psks, () => fleet);
  });
  after(async () => {
    await fleet?.stop();
    await scs.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts every device on its own loopback address, hellos reach the SCS and all get configured', async () => {
    const stateFile = path.join(dir, 'state.json');
    // Hellos wait until the fleet object exists (the stand-in looks ports up in it): a 1 s
    // first-window offset would be slow, so the stand-in simply ignores hellos until then and
    // the next ones (12 s × 0.0005 = 6 ms later) get through.
    fleet = await startFleet({
      devices: N,
      psks,
      scs: `127.0.0.1:${scs.port}`,
      seed: 'fleet-test',
      timeFactor: 0.0005,
      tlsPort: 0,
      httpPort: 0,
      addressBase: '127.201.0.1',
      keyPoolSize: 0,
      stateFile,
      stateFileDebounceMs: 20,
    });
    assert.equal(fleet.workers, 0);
    assert.equal(fleet.devices.length, N);
    assert.equal(new Set(fleet.devices.map((d) => d.address)).size, N);
    assert.equal(fleet.devices[0]?.address, '127.201.0.1');
    await fleet.waitFor('all-provisioned', { timeoutMs: 30_000 });
    // The device turns Post before its CommitChanges reply reaches the SCS.
    await until(() => scs.committed.size === N);
    const c = fleet.counts();
    assert.equal(c.post, N);
    assert.equal(c.in, 0);
    assert.ok(c.hellos >= N);
    // Every device said hello from its own address.
    for (const d of fleet.devices) assert.ok((scs.from.get(d.address) ?? 0) >= 1, `hello from ${d.address}`);
    // After commit the device holds no PSK (none given by SetTLSPSK) and sends no hellos.
    assert.ok(fleet.devices.every((d) => d.state === 'Post' && d.hello === 'idle' && d.pid === null));
    assert.ok(fleet.devices.every((d) => d.provisionedAfterMs !== null));
  });

  it('keeps the state file valid JSON that follows the devices', async () => {
    assert.ok(fleet);
    await fleet.flushStateFile();
    const file = JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as {
      running: boolean;
      counts: { post: number };
      devices: DeviceRecord[];
    };
    assert.equal(file.running, true);
    assert.equal(file.counts.post, N);
    assert.equal(file.devices.length, N);
    const first = file.devices[0];
    assert.ok(first);
    assert.deepEqual(Object.keys(first).sort(), [
      'address',
      'csvPid',
      'faults',
      'hello',
      'hellos',
      'httpPort',
      'index',
      'lastError',
      'lastHelloError',
      'pid',
      'provisionedAfterMs',
      'reboots',
      'state',
      'tls',
      'tlsPort',
      'uuid',
      'wrongPsk',
    ]);
    assert.equal(first.state, 'Post');
    assert.equal(first.csvPid, psks[0]?.pid);
    // The state file never holds a PPS or the MEBx password.
    const text = await readFile(path.join(dir, 'state.json'), 'utf8');
    assert.ok(!text.includes(PASSWORD));
    for (const p of psks) assert.ok(!text.includes(p.pps.reveal()));
  });

  it('answers WS-Management on every device and reboots one on request', async () => {
    assert.ok(fleet);
    const d = fleet.devices[7];
    assert.ok(d?.httpPort);
    const client = new TestWsmanClient({ host: d.address, port: d.httpPort, user: 'admin', password: PASSWORD });
    const reply = await client.post(
      '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" ' +
        'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"><s:Header/>' +
        '<s:Body><wsmid:Identify/></s:Body></s:Envelope>',
    );
    client.close();
    assert.equal(reply.status, 200);
    assert.match(reply.body, /IdentifyResponse/);
    const reboots = d.reboots;
    const changed = fleet.waitFor((f) => (f.devices[7]?.reboots ?? 0) > reboots, { timeoutMs: 5000 });
    fleet.reboot(7);
    await changed;
    assert.equal(fleet.device(7)?.state, 'Post');
  });

  it('stops every device: its ports close and the state file says it is no longer running', async () => {
    assert.ok(fleet);
    const sample = fleet.devices.slice(0, 5).map((d) => ({ ...d }));
    await fleet.stop();
    await fleet.stop();
    for (const d of sample) {
      assert.ok(d.tlsPort !== null && d.httpPort !== null);
      assert.equal(await isClosed(d.address, d.tlsPort), true);
      assert.equal(await isClosed(d.address, d.httpPort), true);
    }
    const file = JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as { running: boolean };
    assert.equal(file.running, false);
    fleet = undefined;
  });
});

describe('fleet faults', () => {
  it('a wrong-psk device never gets configured, reports the failed handshake and the deadline passes', async () => {
    const N = 10;
    const psks = makePsks(N);
    let fleet: Fleet | undefined;
    const scs = await scsFor(psks, () => fleet);
    try {
      const f = await startFleet({
        devices: N,
        psks,
        scs: `127.0.0.1:${scs.port}`,
        seed: 'faults',
        faults: 'wrong-psk:20%',
        timeFactor: 0.0005,
        tlsPort: 0,
        httpPort: 0,
        addressBase: '127.202.0.1',
        keyPoolSize: 0,
      });
      fleet = f;
      const wrong = f.devices.filter((d) => d.wrongPsk).map((d) => d.index);
      assert.equal(wrong.length, 2);
      await f.waitFor((x) => x.counts().post === N - 2, { timeoutMs: 30_000 });
      await f.waitFor((x) => wrong.every((i) => x.devices[i]?.lastError !== null), { timeoutMs: 30_000 });
      for (const i of wrong) {
        const d = f.devices[i];
        assert.equal(d?.state, 'In');
        assert.equal(d?.hello, 'sending');
        assert.match(d?.lastError ?? '', /TLS handshake failed/);
        assert.deepEqual(d?.faults, ['wrong-psk:20%']);
      }
      await assert.rejects(f.waitFor('all-provisioned', { timeoutMs: 100 }), (e) => {
        assert.ok(isScsError(e, 'SCS_SIM_DEADLINE'));
        assert.match(e.message, /8 of 10 devices provisioned/);
        return true;
      });
      const summary = f.summary();
      assert.equal(summary.allProvisioned, false);
      assert.equal(summary.provisioned, 8);
      assert.deepEqual(
        summary.notProvisioned.map((d) => d.index),
        wrong,
      );
    } finally {
      await fleet?.stop();
      await scs.close();
    }
  });

  it('picks the same wrong-psk devices and UUIDs for the same seed', async () => {
    const psks = makePsks(20);
    const run = async (seed: string): Promise<{ wrong: number[]; uuids: string[] }> => {
      const f = await startFleet({
        devices: 20,
        psks,
        scs: '127.0.0.1:9',
        seed,
        faults: 'wrong-psk:25%',
        tlsPort: 0,
        httpPort: 0,
        addressBase: '127.203.0.1',
        keyPoolSize: 0,
        windowMs: 1,
      });
      const out = {
        wrong: f.devices.filter((d) => d.wrongPsk).map((d) => d.index),
        uuids: f.devices.map((d) => d.uuid),
      };
      await f.stop();
      return out;
    };
    const a = await run('same');
    const b = await run('same');
    const c = await run('other');
    assert.deepEqual(a, b);
    assert.equal(a.wrong.length, 5);
    assert.notDeepEqual(a.uuids, c.uuids);
  });
});

describe('hellos follow the device state', () => {
  it('stop at commit and resume, RetryCount 0 with the new PID, after a partial unprovision', async () => {
    const hellos: { pid: string; retry: number }[] = [];
    const listener = net.createServer((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('error', () => undefined);
      s.on('end', () => {
        s.end();
        const b = Buffer.concat(chunks);
        if (b.length === 32) hellos.push({ pid: b.subarray(24).toString('latin1'), retry: b.readUInt32LE(4) });
      });
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as net.AddressInfo).port;
    const [pair] = makePsks(1);
    assert.ok(pair);
    const fleet = await startFleet({
      devices: 1,
      psks: [pair],
      scs: `127.0.0.1:${port}`,
      timeFactor: 0.0005,
      tlsPort: 0,
      httpPort: 0,
      addressBase: '127.209.0.1',
      keyPoolSize: 0,
    });
    try {
      await until(() => hellos.length >= 2);
      const d = fleet.devices[0];
      assert.ok(d?.tlsPort);
      const newPid = generatePid();
      const newPps = generatePps();
      const uri = 'http://intel.com/wbem/wscim/1/amt-schema/1/AMT_SetupAndConfigurationService';
      const call = (name: string, input = ''): string =>
        envelope(`${uri}/${name}`, uri, `<h:${name}_INPUT xmlns:h="${uri}">${input}</h:${name}_INPUT>`);
      const before = new TestWsmanClient({
        host: d.address,
        port: d.tlsPort,
        user: 'admin',
        password: PASSWORD,
        psk: { pid: pair.pid, pps: pair.pps.reveal() },
      });
      assert.equal(
        (await before.post(call('SetTLSPSK', `<h:PID>${newPid}</h:PID><h:PPS>${newPps}</h:PPS>`))).status,
        200,
      );
      assert.equal((await before.post(call('CommitChanges'))).status, 200);
      before.close();
      await fleet.waitFor((f) => f.devices[0]?.state === 'Post', { timeoutMs: 5000 });
      assert.equal(fleet.devices[0]?.hello, 'idle');
      const atCommit = hellos.length;
      // After commit (no TLS configured) the device serves TLS-PSK with the PSK SetTLSPSK gave it.
      const after = new TestWsmanClient({
        host: d.address,
        port: d.tlsPort,
        user: 'admin',
        password: PASSWORD,
        psk: { pid: newPid, pps: newPps },
      });
      const partial = await after.post(call('PartialUnprovision'));
      after.close();
      assert.match(partial.body, /<[^>]*ReturnValue>0</);
      await fleet.waitFor((f) => f.devices[0]?.state === 'In' && f.devices[0].hello === 'sending', { timeoutMs: 5000 });
      await until(() => hellos.some((h, i) => i >= atCommit && h.pid === newPid));
      const resumed = hellos.slice(atCommit).filter((h) => h.pid === newPid);
      assert.equal(resumed[0]?.retry, 0);
      // A hello already on the wire at commit may still land; none with the old PID once hellos resumed.
      const firstNew = hellos.findIndex((h, i) => i >= atCommit && h.pid === newPid);
      assert.ok(
        hellos.slice(firstNew).every((h) => h.pid === newPid),
        'no hello with the consumed PID',
      );
      assert.equal(fleet.devices[0]?.pid, newPid);
    } finally {
      await fleet.stop();
      listener.close();
    }
  });
});

describe('fleet split over worker processes', () => {
  it('runs 12 devices in 3 workers of at most 5, aggregates their states and stops every worker', async () => {
    const N = 12;
    const psks = makePsks(N);
    let fleet: Fleet | undefined;
    const scs = await scsFor(psks, () => fleet);
    try {
      fleet = await startFleet({
        devices: N,
        psks,
        scs: `127.0.0.1:${scs.port}`,
        seed: 'workers',
        timeFactor: 0.0005,
        tlsPort: 0,
        httpPort: 0,
        addressBase: '127.204.0.1',
        maxDevicesPerWorker: 5,
        keyPoolSize: 2,
      });
      assert.equal(fleet.workers, 3);
      const pids = fleet.workerPids;
      assert.equal(pids.length, 3);
      assert.ok(pids.every((p) => p !== process.pid && alive(p)));
      assert.deepEqual(workerChildren().sort(), [...pids].sort());
      assert.equal(fleet.device(0), undefined, 'device objects live in the workers');
      await fleet.waitFor('all-provisioned', { timeoutMs: 60_000 });
      assert.equal(fleet.counts().post, N);
      await until(() => scs.committed.size === N);
      await fleet.stop();
      for (const p of pids) assert.equal(alive(p), false, `worker ${p} has exited`);
      assert.deepEqual(workerChildren(), []);
    } finally {
      await fleet?.stop();
      await scs.close();
    }
  });

  it('fails the start with SCS_LISTEN_FAILED when a device address is taken, leaving no worker behind', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.205.0.3', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await assert.rejects(
        startFleet({
          devices: 4,
          psks: makePsks(4),
          scs: '127.0.0.1:9',
          tlsPort: port,
          httpPort: 0,
          addressBase: '127.205.0.1',
          maxDevicesPerWorker: 2,
          keyPoolSize: 0,
        }),
        (e) => isScsError(e, 'SCS_LISTEN_FAILED'),
      );
      await until(() => workerChildren().length === 0);
    } finally {
      blocker.close();
    }
  });
});

describe('fleet options', () => {
  it('reads the PSK file, dashed and undashed, with a header', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'amt-sim-psk-'));
    try {
      const psks = makePsks(3);
      const lines = [
        'PID,PPS',
        ...psks.map((p, i) =>
          i === 1 ? `${p.pid},${p.pps.reveal()}` : `${formatPid(p.pid)},${formatPps(p.pps.reveal())}`,
        ),
      ];
      const file = path.join(dir, 'psks.csv');
      await writeFile(file, lines.join('\r\n'));
      const fleet = await startFleet({
        devices: 3,
        pskFile: file,
        scs: '127.0.0.1:9',
        tlsPort: 0,
        httpPort: 0,
        addressBase: '127.206.0.1',
        keyPoolSize: 0,
        windowMs: 1,
      });
      assert.deepEqual(
        fleet.devices.map((d) => d.pid),
        psks.map((p) => p.pid),
      );
      await fleet.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  const bad: [string, Parameters<typeof startFleet>[0], string][] = [
    ['too few PSKs', { devices: 3, psks: makePsks(2) }, 'SCS_SIM_CONFIG_INVALID'],
    ['a bad fault spec', { devices: 1, psks: makePsks(1), faults: 'explode' }, 'SCS_SIM_CONFIG_INVALID'],
    ['a bad --scs', { devices: 1, psks: makePsks(1), scs: 'host:99999' }, 'SCS_SIM_CONFIG_INVALID'],
    ['a zero time factor', { devices: 1, psks: makePsks(1), timeFactor: 0 }, 'SCS_SIM_CONFIG_INVALID'],
    [
      'an address base outside 127/8',
      { devices: 1, psks: makePsks(1), addressBase: '10.0.0.1' },
      'SCS_SIM_CONFIG_INVALID',
    ],
    ['a missing PSK file', { devices: 1, pskFile: '/nonexistent/psks.csv' }, 'SCS_FILE_IO'],
  ];
  for (const [what, opts, code] of bad) {
    it(`refuses ${what} with ${code}`, async () => {
      await assert.rejects(startFleet(opts), (e) => isScsError(e) && e.code === code);
    });
  }

  it('parses HOST, HOST:PORT and [IPv6]:PORT for --scs', () => {
    assert.deepEqual(parseHostPort('scs.example', 9971), { host: 'scs.example', port: 9971 });
    assert.deepEqual(parseHostPort('10.0.0.5:19971', 9971), { host: '10.0.0.5', port: 19971 });
    assert.deepEqual(parseHostPort('[::1]:99', 9971), { host: '::1', port: 99 });
  });
});
