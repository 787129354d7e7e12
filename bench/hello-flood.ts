/**
 * Hello flood benchmark (docs/security.md, "Hello abuse"). The server (src/main.ts, real SQLite
 * store) runs in this process; `--children` C sender processes (bench/hello-sender.c, built
 * here: Node senders were CPU-starved and reached 54 hellos/s) send hellos with made-up PIDs
 * from many loopback source addresses (127.250-254.x.y, 64,000 per process) at a target rate,
 * at most `--open` connections open per process (a connection due beyond it is skipped and
 * counted). Measured side by side in one run: a real simulated device provisioned with no
 * flood (baseline) and during the flood (time to its first step, i.e. its hello served, and to
 * provisioned), the offered and achieved flood rate, every hello's fate (decoded, rate-limited
 * by reason, dropped), and the server's memory (RSS and heap, sampled every 100 ms). Then a
 * slow-connection phase: N connections held open, trickling, to measure the memory one held
 * hello connection costs. Prints one JSON object.
 *
 * Run: node --import tsx --expose-gc bench/hello-flood.ts [--rate 10000] [--seconds 10] [--children 2] [--open 4000]
 *        [--slow 2000] [--log-level warn]  (the server's log lines are kept in memory, as in the e2e tests)
 */
import { randomInt } from 'node:crypto';
import net from 'node:net';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodePskHello } from '../simulator/hello/encode.ts';
import { generatePid } from '../src/psk/generate.ts';
import { addPsks, fleetFor, randomPort, startTestScs, type TestScs } from '../test/e2e/harness.ts';
import { buildCSender, runCSender } from './hello-c-sender.ts';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i < 0 ? NaN : Number(process.argv[i + 1]);
  return Number.isFinite(v) ? v : fallback;
};

function attackerAddress(): string {
  return `127.${250 + randomInt(5)}.${randomInt(256)}.${1 + randomInt(254)}`;
}

function hello(): Buffer {
  const h = Array.from({ length: 16 }, () => randomInt(256).toString(16).padStart(2, '0')).join('');
  const uuid = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  return Buffer.from(encodePskHello({ adminCredentialsSet: false, retryCount: 0, uuid, pid: generatePid() }));
}

interface DeviceRun {
  /** Fleet start (the device's first hello) to the server's first step on it: the hello served. */
  servedMs: number;
  /** Fleet start to the job succeeded. */
  provisionedMs: number;
}

async function provisionOne(scs: TestScs, port: number): Promise<DeviceRun> {
  const psks = await addPsks(scs.store, 1, 'bench');
  await addPsks(scs.store, 2, 'bench', 'available');
  const pid = psks[0]?.pid;
  const before = scs.finished.length;
  const t0 = performance.now();
  let servedMs = -1;
  const onStep = ({ job }: { job: { pid: string | null } }): void => {
    if (servedMs < 0 && job.pid === pid) servedMs = performance.now() - t0;
  };
  scs.server.runner.on('step', onStep);
  const fleet = await fleetFor(scs, psks, port, { timeFactor: 0.05 });
  try {
    for (;;) {
      const f = scs.finished.slice(before).find((x) => x.job.pid === pid);
      if (f !== undefined) {
        if (f.state !== 'succeeded') throw new Error(`the device failed: ${f.code ?? ''}`);
        return { servedMs, provisionedMs: performance.now() - t0 };
      }
      if (performance.now() - t0 > 300_000) throw new Error('the device was not provisioned in 300 s');
      await sleep(20);
    }
  } finally {
    scs.server.runner.off('step', onStep);
    await fleet.stop();
  }
}

async function counter(scs: TestScs, name: string): Promise<Record<string, number>> {
  const text = await scs.server.metrics.registry.metrics();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\d+)$`, 'gm'))) out[m[1] ?? ''] = Number(m[2]);
  return out;
}

const mb = (n: number): number => Math.round((n / 1048576) * 10) / 10;

async function main(): Promise<void> {
  const rate = arg('rate', 10_000);
  const seconds = arg('seconds', 10);
  const children = arg('children', 2);
  const openCap = arg('open', 4000);
  const slow = arg('slow', 2000);
  buildCSender();
  const port = randomPort();
  const logIndex = process.argv.indexOf('--log-level');
  const logLevel = logIndex > 0 ? (process.argv[logIndex + 1] ?? 'warn') : 'warn';
  const scs = await startTestScs({ amtTlsPort: port, config: { logLevel } });
  try {
    const baseline = await provisionOne(scs, port);
    global.gc?.();
    const idle = process.memoryUsage();
    let peakRss = idle.rss;
    let peakHeap = idle.heapUsed;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed);
    }, 100);
    const before = scs.server.listener.counters();
    const load0 = loadavg()[0] ?? 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const floods = Array.from({ length: children }, (_, i) =>
      runCSender({
        port: scs.helloPort,
        rate: rate / children,
        seconds,
        concurrency: openCap,
        prefix: `127.${250 + (i % 5)}`,
        addresses: 64_000,
        timeoutMs: 10_000,
      }),
    );
    await sleep(1000);
    const during = await provisionOne(scs, port);
    const reports = await Promise.all(floods);
    const floodMs = performance.now() - t0;
    // Let the server finish what it took in.
    await sleep(1000);
    const cpu = process.cpuUsage(cpu0);
    clearInterval(sampler);
    const after = scs.server.listener.counters();
    const started = reports.reduce((n, r) => n + r.started, 0);
    const completed = reports.reduce((n, r) => n + r.completed, 0);
    const errors: Record<string, number> = {};
    for (const r of reports) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    const decoded = after.received - before.received;
    // Slow connections: `slow` sockets send half a hello and hold on (helloTimeoutMs cuts them).
    global.gc?.();
    const beforeSlow = process.memoryUsage();
    const sockets: net.Socket[] = [];
    const half = hello().subarray(0, 16);
    for (let i = 0; i < slow; i++) {
      const s = net.connect({ host: '127.0.0.1', port: scs.helloPort, localAddress: attackerAddress() }, () =>
        s.write(half),
      );
      s.on('error', () => undefined);
      sockets.push(s);
    }
    await sleep(1000);
    const heldRss = process.memoryUsage().rss;
    const heldHeap = process.memoryUsage().heapUsed;
    for (const s of sockets) s.destroy();

    console.log(
      JSON.stringify(
        {
          bench: 'hello-flood',
          config: {
            logLevel,
            helloMaxConnections: scs.server.config.helloMaxConnections,
            helloTimeoutMs: scs.server.config.helloTimeoutMs,
            helloMaxPending: scs.server.config.helloMaxPending,
            helloRateMaxTracked: scs.server.config.helloRateMaxTracked,
          },
          flood: {
            sender: 'bench/hello-sender.c',
            targetPerSecond: rate,
            children,
            openCapPerChild: openCap,
            seconds: Math.round(Math.max(...reports.map((r) => r.ms))) / 1000,
            started,
            offeredPerSecond: Math.round(started / seconds),
            skippedAtClientCap: reports.reduce((n, r) => n + r.skipped, 0),
            completed,
            clientErrors: errors,
            latencyMsP50P99Max: reports.map((r) => [r.latencyMs.p50, r.latencyMs.p99, r.latencyMs.max]),
          },
          server: {
            connectionsAccepted: after.connections - before.connections,
            decoded,
            acceptedPerSecond: Math.round(decoded / seconds),
            cpuMsPerSecond: Math.round((cpu.user + cpu.system) / 1000 / (floodMs / 1000)),
            cpuUsPerHello: Math.round(((cpu.user + cpu.system) / Math.max(1, decoded)) * 10) / 10,
            droppedMaxConnections: after.dropped.maxConnections - before.dropped.maxConnections,
            droppedPerAddress: after.dropped.perAddress - before.dropped.perAddress,
            droppedTimeout: after.dropped.timeout - before.dropped.timeout,
            droppedReset: after.dropped.reset - before.dropped.reset,
            rateLimited: await counter(scs, 'scs_hellos_rate_limited_total'),
            rejected: await counter(scs, 'scs_hellos_rejected_total'),
            unknownPidAuditEntries: (await scs.store.audit.list({ action: 'hello.unknown_pid', limit: 10_000 })).length,
          },
          legitimateDevice: {
            baseline: { servedMs: Math.round(baseline.servedMs), provisionedMs: Math.round(baseline.provisionedMs) },
            duringFlood: { servedMs: Math.round(during.servedMs), provisionedMs: Math.round(during.provisionedMs) },
            ratio: Math.round((during.provisionedMs / baseline.provisionedMs) * 100) / 100,
          },
          loadAverage: { atFloodStart: load0, atEnd: loadavg()[0] },
          memoryMb: {
            idleRss: mb(idle.rss),
            peakRss: mb(peakRss),
            idleHeap: mb(idle.heapUsed),
            peakHeap: mb(peakHeap),
          },
          slowConnections: {
            held: slow,
            rssDeltaMb: mb(heldRss - beforeSlow.rss),
            heapDeltaMb: mb(heldHeap - beforeSlow.heapUsed),
            // Both ends of each connection live in this process: an upper bound for the server side.
            rssPerConnectionKbBothEnds: Math.round((heldRss - beforeSlow.rss) / slow / 102.4) / 10,
          },
        },
        null,
        2,
      ),
    );
  } finally {
    await scs.stop();
  }
}

await main();
