/**
 * bench/provision.ts --db postgres://... [--nodes K]: provisioning with the server in child
 * processes (bench/provision-node.ts), measured the same way for every run, side by side:
 *
 *   1. SQLite, 1 node (the baseline);
 *   2. PostgreSQL, 1 node;
 *   3. PostgreSQL, K nodes behind a transparent TCP balancer (when K > 1).
 *
 * Each run: a fresh installation (SQLite file, or a fresh schema in the given database), N
 * simulated devices (worker processes, not counted), all nodes listening before the fleet
 * starts. Wall time runs from the fleet's start to the last job's end; server CPU is the sum
 * of the nodes' process.cpuUsage() over that window; round trips are the nodes' pg queries
 * (BEGIN and COMMIT included) per device.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startFleet } from '../simulator/fleet/fleet.ts';
import type { LogLevel } from '../src/config.ts';
import type { PskPair } from '../src/psk/formats/pair.ts';
import { generatePid, generatePps } from '../src/psk/generate.ts';
import { Secret } from '../src/secret.ts';
import { openStore } from '../src/store/open.ts';
import { freshSchema } from '../src/store/postgres/test-server.ts';
import { startBalancer } from '../test/e2e/multinode-balancer.ts';
import type { NodeArgs, NodeReport } from './provision-node.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MEBX = 'P@ssw0rd';

export interface NodesBenchOptions {
  readonly pgUrl: string | undefined;
  readonly nodes: number;
  readonly devices: number;
  readonly maxJobs: number;
  readonly perWorker: number;
  readonly logLevel: LogLevel;
  readonly tls: boolean;
}

interface RunResult {
  readonly engine: 'sqlite' | 'postgres';
  readonly nodes: number;
  readonly wallMs: number;
  readonly devicesPerSec: number;
  readonly serverCpuMsPerDevice: number;
  readonly dbRoundTripsPerDevice: number | null;
  readonly failed: number;
}

function pairs(n: number): PskPair[] {
  return Array.from({ length: n }, () => ({ pid: generatePid(), pps: new Secret(generatePps()) }));
}

function ask(child: ChildProcess): Promise<NodeReport> {
  return new Promise((resolve) => {
    const on = (m: { type?: string }): void => {
      if (m.type !== 'report') return;
      child.off('message', on);
      resolve(m as NodeReport);
    };
    child.on('message', on);
    child.send({ type: 'report' });
  });
}

async function run(o: NodesBenchOptions, engine: 'sqlite' | 'postgres', nodes: number): Promise<RunResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'scs-bench-nodes-'));
  const masterKeyFile = path.join(dir, 'master.key');
  const fresh = engine === 'postgres' ? await freshSchema(o.pgUrl as string) : undefined;
  const db = fresh?.url ?? `sqlite:${path.join(dir, 'scs.db')}`;
  const tlsPort = 20_000 + randomInt(40_000);
  const children: ChildProcess[] = [];
  try {
    const psks = pairs(o.devices);
    {
      const { store } = await openStore({ db, masterKeyFile });
      await store.psks.insertMany(
        [
          ...psks.map((p) => ({ ...p, batch: 'bench', state: 'exported' as const })),
          ...pairs(o.devices).map((p) => ({ ...p, batch: 'bench' })),
        ],
        { actor: 'bench', source: 'generate' },
      );
      await store.profiles.update(
        'default',
        { secrets: { currentMebxPassword: new Secret(MEBX) }, settings: { tls: o.tls ? 'on' : 'off' } },
        { actor: 'bench' },
      );
      await store.close();
    }
    const ports: number[] = [];
    for (let i = 0; i < nodes; i++) {
      const args: NodeArgs = {
        db,
        dataDir: path.join(dir, `node-${i}`),
        masterKeyFile,
        amtTlsPort: tlsPort,
        nodeId: `node-${i}`,
        maxJobs: o.maxJobs,
        logLevel: o.logLevel,
      };
      const child = fork(path.join(HERE, 'provision-node.ts'), [JSON.stringify(args)], {
        execArgv: ['--import', 'tsx', '--no-warnings=ExperimentalWarning'],
      });
      children.push(child);
      const [m] = (await once(child, 'message')) as [{ type: string; port: number }];
      ports.push(m.port);
    }
    const balancer = nodes > 1 ? await startBalancer(ports) : undefined;
    const before = await Promise.all(children.map(ask));
    const t0 = performance.now();
    const fleet = await startFleet({
      devices: o.devices,
      psks,
      scs: `127.0.0.1:${balancer?.port ?? ports[0]}`,
      tlsPort,
      httpPort: tlsPort + 1,
      addressBase: `127.${100 + randomInt(150)}.${randomInt(200)}.1`,
      workers: 'processes',
      maxDevicesPerWorker: o.perWorker,
      keyPoolSize: 16,
      mebxPassword: MEBX,
      timeFactor: 0.1,
    });
    let after: NodeReport[];
    for (;;) {
      after = await Promise.all(children.map(ask));
      if (after.reduce((a, r) => a + r.succeeded + r.failed, 0) >= o.devices) break;
      await sleep(100);
    }
    const wallMs = performance.now() - t0;
    await fleet.stop();
    await balancer?.close();
    const cpu = after.reduce((a, r, i) => a + r.cpuMs - (before[i]?.cpuMs ?? 0), 0);
    const queries =
      engine === 'postgres' ? after.reduce((a, r, i) => a + (r.queries ?? 0) - (before[i]?.queries ?? 0), 0) : null;
    return {
      engine,
      nodes,
      wallMs: Math.round(wallMs),
      devicesPerSec: Math.round((o.devices / wallMs) * 10_000) / 10,
      serverCpuMsPerDevice: Math.round((cpu / o.devices) * 100) / 100,
      dbRoundTripsPerDevice: queries === null ? null : Math.round((queries / o.devices) * 10) / 10,
      failed: after.reduce((a, r) => a + r.failed, 0),
    };
  } finally {
    for (const c of children) {
      c.send({ type: 'stop' });
      const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
      await once(c, 'exit');
      clearTimeout(t);
    }
    await fresh?.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runNodesBench(o: NodesBenchOptions): Promise<void> {
  const runs: RunResult[] = [await run(o, 'sqlite', 1)];
  if (o.pgUrl !== undefined) {
    runs.push(await run(o, 'postgres', 1));
    if (o.nodes > 1) runs.push(await run(o, 'postgres', o.nodes));
  }
  const sqlite = runs[0] as RunResult;
  const pg1 = runs.find((r) => r.engine === 'postgres' && r.nodes === 1);
  const cpuRatio =
    pg1 === undefined ? null : Math.round((pg1.serverCpuMsPerDevice / sqlite.serverCpuMsPerDevice) * 100) / 100;
  process.stdout.write(
    `${JSON.stringify(
      {
        benchmark: 'provision-nodes',
        devices: o.devices,
        maxJobsPerNode: o.maxJobs,
        node: process.version,
        runs,
        ratio: { postgresToSqliteCpuPerDevice: cpuRatio },
        targets: {
          postgresCpuWithin1_5xOfSqlite: cpuRatio === null ? null : cpuRatio <= 1.5,
          noFailure: runs.every((r) => r.failed === 0),
        },
      },
      null,
      2,
    )}\n`,
  );
}
