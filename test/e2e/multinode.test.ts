import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startFleet, type Fleet } from '../../simulator/fleet/fleet.ts';
import type { PskPair } from '../../src/psk/formats/pair.ts';
import { Secret } from '../../src/secret.ts';
import { openStore } from '../../src/store/open.ts';
import { freshSchema, pgTestServer } from '../../src/store/postgres/test-server.ts';
import { addPsks, leaks, MEBX, randomAddressBase, randomPort, secretsOf } from './harness.ts';
import { startBalancer } from './multinode-balancer.ts';
import type { NodeArgs } from './multinode-node.ts';

/**
 * Several nodes (docs/operations.md): two server processes on one PostgreSQL database behind a
 * TCP balancer for the hello port, 300 simulated devices; one node is killed with SIGKILL in
 * the middle of the run. The other node takes over its jobs when their leases expire, and
 * every device ends provisioned exactly once: one successful job, one `device.provisioned`
 * entry, its PSK consumed once, and one valid audit chain written by both nodes.
 */

const N = 300;
const HERE = path.dirname(fileURLToPath(import.meta.url));
const server = await pgTestServer();

describe('several nodes on one PostgreSQL database', { skip: server.skip }, () => {
  it(
    'provisions every device exactly once when one of two nodes is killed mid-run',
    { timeout: 2_400_000 },
    async () => {
      const fresh = await freshSchema(server.url as string);
      const dir = mkdtempSync(path.join(tmpdir(), 'scs-multinode-'));
      const masterKeyFile = path.join(dir, 'master.key');
      const amtTlsPort = randomPort();
      const output = new Map<string, string[]>();
      const children: ChildProcess[] = [];
      let fleet: Fleet | undefined;
      let balancer: Awaited<ReturnType<typeof startBalancer>> | undefined;
      const start = (nodeId: string): ChildProcess => {
        const args: NodeArgs = {
          db: fresh.url,
          dataDir: path.join(dir, nodeId),
          masterKeyFile,
          amtTlsPort,
          nodeId,
          maxJobs: 48,
        };
        const child = spawn(
          process.execPath,
          [
            '--import',
            'tsx',
            '--no-warnings=ExperimentalWarning',
            path.join(HERE, 'multinode-node.ts'),
            JSON.stringify(args),
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        const lines: string[] = [];
        output.set(nodeId, lines);
        child.stdout?.on('data', (c: Buffer) => lines.push(c.toString()));
        child.stderr?.on('data', (c: Buffer) => lines.push(c.toString()));
        children.push(child);
        return child;
      };
      const helloPort = async (nodeId: string, child: ChildProcess): Promise<number> => {
        const deadline = Date.now() + 60_000;
        for (;;) {
          const m = /multinode: \S+ listening (\d+)/.exec((output.get(nodeId) ?? []).join(''));
          if (m) return Number(m[1]);
          if (child.exitCode !== null) throw new Error(`${nodeId} exited: ${(output.get(nodeId) ?? []).join('')}`);
          if (Date.now() > deadline) throw new Error(`${nodeId} did not start listening`);
          await sleep(50);
        }
      };
      const all = (): string[] => [...output.values()].flat();

      try {
        // The installation is prepared first (master key, PSKs, the profile's MEBx password), as
        // an operator would before starting the nodes.
        let psks: PskPair[];
        {
          const { store } = await openStore({ db: fresh.url, masterKeyFile });
          psks = await addPsks(store, N, 'fleet');
          await addPsks(store, N, 'fleet', 'available');
          await store.profiles.update(
            'default',
            { secrets: { currentMebxPassword: new Secret(MEBX) } },
            { actor: 'e2e' },
          );
          await store.close();
        }
        const a = start('node-a');
        const b = start('node-b');
        const ports = [await helloPort('node-a', a), await helloPort('node-b', b)];
        balancer = await startBalancer(ports);
        fleet = await startFleet({
          devices: N,
          psks,
          scs: `127.0.0.1:${balancer.port}`,
          tlsPort: amtTlsPort,
          httpPort: amtTlsPort + 1,
          addressBase: randomAddressBase(),
          workers: 'inline',
          keyPoolSize: 4,
          mebxPassword: MEBX,
          timeFactor: 0.05,
        });
        const f = fleet;
        // Early enough that most devices are still to do, late enough that both nodes are busy.
        await f.waitFor((x) => x.counts().post >= N / 10, { timeoutMs: 600_000 });
        // Kill node A while it holds jobs.
        const held = async (): Promise<number> => {
          const rows = await fresh.query(
            `select count(*)::int as n from jobs where lease_owner = 'node-a' and state in ('queued', 'running')`,
          );
          return Number(rows[0]?.n ?? 0);
        };
        const killDeadline = Date.now() + 60_000;
        while ((await held()) === 0 && Date.now() < killDeadline) await sleep(20);
        const heldAtKill = await held();
        a.kill('SIGKILL');
        await once(a, 'exit');
        const postAtKill = f.counts().post;
        assert.ok(heldAtKill > 0, 'node A held no job when it was killed');
        assert.ok(postAtKill < N, `the kill came too late (${postAtKill} of ${N} already Post)`);

        await f.waitFor('all-provisioned', { timeoutMs: 1_200_000 });
        // The last jobs commit after their devices turned Post.
        const deadline = Date.now() + 60_000;
        for (;;) {
          const [row] = await fresh.query(
            `select (select count(*)::int from jobs where state in ('queued', 'running')) as unfinished,
                  (select count(*)::int from devices where state = 'provisioned') as provisioned`,
          );
          if (row?.unfinished === 0 && row.provisioned === N) break;
          if (Date.now() > deadline) throw new Error(`not settled: ${JSON.stringify(row)}`);
          await sleep(250);
        }
        b.kill('SIGTERM');
        const [code] = (await once(b, 'exit')) as [number | null];
        assert.equal(code, 0, 'node B exits 0 on SIGTERM');

        const { store } = await openStore({ db: fresh.url, masterKeyFile });
        try {
          const uuids = f.devices.map((d) => d.uuid);
          const jobs = await store.jobs.list({ limit: 10_000 });
          const succeeded = new Map<string, number>();
          for (const j of jobs.filter((x) => x.state === 'succeeded'))
            succeeded.set(j.deviceUuid, (succeeded.get(j.deviceUuid) ?? 0) + 1);
          for (const u of uuids)
            assert.equal(succeeded.get(u), 1, `device ${u}: ${succeeded.get(u) ?? 0} successful jobs`);
          const provisioned = await store.audit.list({ action: 'device.provisioned', limit: 10_000 });
          const perDevice = new Map<string, number>();
          for (const e of provisioned)
            perDevice.set(String(e.detail.uuid), (perDevice.get(String(e.detail.uuid)) ?? 0) + 1);
          for (const u of uuids)
            assert.equal(perDevice.get(u), 1, `device ${u} provisioned ${perDevice.get(u) ?? 0} times`);
          // Every handed-out PSK consumed exactly once, by its own device.
          const counts = await store.psks.countByState();
          assert.equal(counts.consumed, N);
          assert.equal(counts.in_use, N, 'one renewal PSK bound per device');
          const moves = await store.audit.list({ action: 'psk.state', limit: 10_000 });
          const consumedTimes = new Map<string, number>();
          for (const e of moves.filter((x) => x.detail.to === 'consumed'))
            for (const pid of e.pids) consumedTimes.set(pid, (consumedTimes.get(pid) ?? 0) + 1);
          for (const p of psks)
            assert.equal(consumedTimes.get(p.pid), 1, `PSK ${p.pid} consumed ${consumedTimes.get(p.pid) ?? 0} times`);
          const inUseTwice = await fresh.query(
            `select device_uuid, count(*)::int as n from psks where state = 'in_use' group by device_uuid having count(*) > 1`,
          );
          assert.deepEqual(inUseTwice, []);
          // Node B took over node A's jobs, and both wrote one chain.
          const started = await store.audit.list({ action: 'job.started', limit: 10_000 });
          assert.ok(
            started.some((e) => e.actor === 'scs:node-b' && e.detail.resumed === true),
            'node B resumed some of node A jobs',
          );
          assert.ok(started.some((e) => e.actor === 'scs:node-a'));
          const v = await store.audit.verify();
          assert.ok(v.ok, JSON.stringify(v));
        } finally {
          await store.close();
        }
        assert.deepEqual(leaks(all(), secretsOf(psks, [MEBX])), []);
      } catch (error) {
        const tail = all()
          .join('')
          .split('\n')
          .filter((l) => /"level":(50|40)/.test(l))
          .slice(-30);
        throw new Error(`${String(error)}\n${tail.join('\n')}`, { cause: error });
      } finally {
        await fleet?.stop();
        await balancer?.close();
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
        await fresh.drop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
