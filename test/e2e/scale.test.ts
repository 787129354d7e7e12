import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startFleet } from '../../simulator/fleet/fleet.ts';
import type { PskPair } from '../../src/psk/formats/pair.ts';
import { Secret } from '../../src/secret.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import { addPsks, fleetFor, leaks, MEBX, randomAddressBase, randomPort, secretsOf, startTestScs } from './harness.ts';

/**
 * Many devices at once: 200 in one server process; and 200 with the server killed (SIGKILL)
 * in the middle of the run and started again, after which every device is provisioned exactly
 * once and every PSK is where it should be.
 */

const N = 200;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** What must hold after a run: one success per device, PSKs consumed once, renewals bound. */
async function checkExactlyOnce(store: Store, psks: readonly PskPair[], uuids: readonly string[]): Promise<void> {
  const devices = await store.devices.list({ limit: 10_000 });
  assert.equal(devices.length, uuids.length);
  assert.ok(
    devices.every((d) => d.state === 'provisioned'),
    'every device provisioned',
  );
  const jobs = await store.jobs.list({ limit: 10_000 });
  assert.equal(jobs.filter((j) => j.state === 'queued' || j.state === 'running').length, 0, 'no unfinished job');
  const succeeded = new Map<string, number>();
  for (const j of jobs.filter((x) => x.state === 'succeeded'))
    succeeded.set(j.deviceUuid, (succeeded.get(j.deviceUuid) ?? 0) + 1);
  for (const u of uuids) assert.equal(succeeded.get(u), 1, `device ${u}: ${succeeded.get(u) ?? 0} successful jobs`);
  const provisionedEntries = await store.audit.list({ action: 'device.provisioned', limit: 10_000 });
  const perDevice = new Map<string, number>();
  for (const e of provisionedEntries)
    perDevice.set(String(e.detail.uuid), (perDevice.get(String(e.detail.uuid)) ?? 0) + 1);
  for (const u of uuids) assert.equal(perDevice.get(u), 1, `device ${u} provisioned ${perDevice.get(u) ?? 0} times`);
  const counts = await store.psks.countByState();
  assert.equal(counts.consumed, uuids.length);
  assert.equal(counts.in_use, uuids.length);
  assert.equal(counts.exported, 0);
  const consumedBy = new Set<string>();
  for (const p of psks) {
    const row = await store.psks.get(p.pid);
    assert.equal(row?.state, 'consumed');
    assert.ok(row.deviceUuid !== null && !consumedBy.has(row.deviceUuid), 'each device consumed exactly one PSK');
    consumedBy.add(row.deviceUuid);
  }
  for (const d of devices) assert.deepEqual(await store.pskBindings.boundTo(d.uuid), [d.pid]);
  assert.equal((await store.audit.verify()).ok, true);
}

describe('provisioning at scale', { timeout: 600_000 }, () => {
  it(`provisions ${N} devices at once in one server`, async () => {
    const port = randomPort();
    const scs = await startTestScs({ amtTlsPort: port, config: { logLevel: 'info' } });
    const psks = await addPsks(scs.store, N, 'fleet');
    await addPsks(scs.store, N, 'fleet', 'available');
    const fleet = await fleetFor(scs, psks, port, { timeFactor: 0.05 });
    try {
      await fleet.waitFor('all-provisioned', { timeoutMs: 300_000 });
      const finished = await scs.waitFinished(N, 60_000);
      assert.equal(finished.filter((f) => f.state === 'succeeded').length, N);
      await checkExactlyOnce(
        scs.store,
        psks,
        fleet.devices.map((d) => d.uuid),
      );
      for (const d of fleet.devices) assert.equal((await scs.store.devices.get(d.uuid))?.pid, d.pid);
      assert.deepEqual(leaks(scs.logs, secretsOf(psks, [MEBX])), []);
    } finally {
      await fleet.stop();
      await scs.stop();
    }
  });

  it(`survives kill -9 of serve during a ${N}-device run: after a restart every device is provisioned exactly once`, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'scs-kill-'));
    const amtTlsPort = randomPort();
    const helloPort = await freePort();
    const children: ChildProcess[] = [];
    const output: string[] = [];
    const serve = (): ChildProcess => {
      const child = spawn(
        path.join(ROOT, 'amt-scs'),
        [
          '--data-dir',
          dir,
          '--hello-host',
          '127.0.0.1',
          '--hello-port',
          String(helloPort),
          '--amt-tls-port',
          String(amtTlsPort),
          '--api-host',
          '127.0.0.1',
          '--api-port',
          '0',
          '--max-jobs',
          '48',
          '--log-level',
          'info',
          'serve',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout?.on('data', (c: Buffer) => output.push(c.toString()));
      child.stderr?.on('data', (c: Buffer) => output.push(c.toString()));
      children.push(child);
      return child;
    };
    /** Resolves when the `nth` serve process started has said it listens. */
    const listening = async (child: ChildProcess, nth: number): Promise<void> => {
      const deadline = Date.now() + 30_000;
      while (output.join('').split('amt-scs: listening for hellos').length - 1 < nth) {
        if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}: ${output.join('')}`);
        if (Date.now() > deadline) throw new Error('serve did not start listening');
        await sleep(50);
      }
    };

    // The store is prepared in this process first: PSKs and the profile's MEBx password.
    let psks: PskPair[];
    {
      const { store } = await openStore({
        db: `sqlite:${path.join(dir, 'scs.db')}`,
        masterKeyFile: path.join(dir, 'master.key'),
      });
      psks = await addPsks(store, N, 'fleet');
      await addPsks(store, N, 'fleet', 'available');
      await store.profiles.update('default', { secrets: { currentMebxPassword: new Secret(MEBX) } }, { actor: 'e2e' });
      await store.close();
    }
    const first = serve();
    let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
    try {
      await listening(first, 1);
      fleet = await startFleet({
        devices: N,
        psks,
        scs: `127.0.0.1:${helloPort}`,
        tlsPort: amtTlsPort,
        httpPort: amtTlsPort + 1,
        addressBase: randomAddressBase(),
        workers: 'inline',
        keyPoolSize: 4,
        mebxPassword: MEBX,
        timeFactor: 0.05,
      });
      const f = fleet;
      // Kill in the middle: some devices done, most not.
      await f.waitFor((x) => x.counts().post >= N / 4, { timeoutMs: 240_000 });
      first.kill('SIGKILL');
      await once(first, 'exit');
      const postAtKill = f.counts().post;
      assert.ok(postAtKill < N, `the kill came too late (${postAtKill} of ${N} already Post)`);
      await sleep(500);

      const second = serve();
      await listening(second, 2);
      try {
        await f.waitFor('all-provisioned', { timeoutMs: 300_000 });
      } catch (error) {
        // Say which devices and why, from the store and the server's log.
        const stuck = f.devices.filter((d) => d.state !== 'Post');
        const { store } = await openStore({
          db: `sqlite:${path.join(dir, 'scs.db')}`,
          masterKeyFile: path.join(dir, 'master.key'),
        });
        const lines: string[] = [];
        for (const d of stuck) {
          const jobs = await store.jobs.list({ deviceUuid: d.uuid });
          lines.push(
            `${d.uuid} ${d.address} hellos ${d.hellos} hello ${d.hello} lastHelloError ${d.lastHelloError ?? '-'} lastError ${d.lastError ?? '-'}`,
            ...jobs.map(
              (j) =>
                `  job ${j.id} ${j.state} step ${j.step ?? '-'} attempts ${j.attempts} ${j.errorCode ?? ''} ${j.errorMessage ?? ''} ${JSON.stringify(j.data)}`,
            ),
            ...output
              .join('')
              .split('\n')
              .filter((l) => l.includes(d.uuid))
              .slice(-15),
          );
        }
        await store.close();
        throw new Error(`${String(error)}\n${lines.join('\n')}`, { cause: error });
      }
      // The last jobs finish their transaction after the devices turned Post: wait for them.
      const deadline = Date.now() + 60_000;
      for (;;) {
        const { store } = await openStore({
          db: `sqlite:${path.join(dir, 'scs.db')}`,
          masterKeyFile: path.join(dir, 'master.key'),
        });
        const unfinished = (await store.jobs.unfinished()).length;
        const provisioned = (await store.devices.countByState()).provisioned;
        await store.close();
        if (unfinished === 0 && provisioned === N) break;
        if (Date.now() > deadline) throw new Error(`${unfinished} jobs unfinished, ${provisioned} devices provisioned`);
        await sleep(250);
      }
      second.kill('SIGTERM');
      const [code] = (await once(second, 'exit')) as [number | null];
      assert.equal(code, 0, 'serve exits 0 on SIGTERM');
      assert.match(output.join(''), /unfinished job\(s\) resumed/);

      const { store } = await openStore({
        db: `sqlite:${path.join(dir, 'scs.db')}`,
        masterKeyFile: path.join(dir, 'master.key'),
      });
      try {
        await checkExactlyOnce(
          store,
          psks,
          f.devices.map((d) => d.uuid),
        );
        const resumed = (await store.audit.list({ action: 'job.started', limit: 10_000 })).filter(
          (e) => e.detail.resumed === true,
        );
        assert.ok(resumed.length > 0, 'some jobs were resumed after the kill');
      } finally {
        await store.close();
      }
      assert.deepEqual(leaks(output, secretsOf(psks, [MEBX])), []);
    } finally {
      await fleet?.stop();
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
