/**
 * Hello flood benchmark (docs/security.md, "Hello abuse"). The server (src/main.ts, real SQLite
 * store) runs in this process; flooder child processes send hellos with made-up PIDs from many
 * loopback source addresses (127.250-254.x.y) at a target rate. Measured side by side in one
 * run: a real simulated device provisioned with no flood (baseline) and during the flood, the
 * achieved flood rate, every hello's fate (decoded, rate-limited by reason, dropped), and the
 * server's memory (RSS and heap, sampled every 100 ms). Then a slow-connection phase: N
 * connections held open, trickling, to measure the memory one held hello connection costs.
 * Prints one JSON object.
 *
 * Run: node --import tsx bench/hello-flood.ts [--rate 10000] [--seconds 10] [--children 2] [--slow 2000]
 */
import { fork } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { encodePskHello } from '../simulator/hello/encode.ts';
import { generatePid } from '../src/psk/generate.ts';
import { addPsks, fleetFor, randomPort, startTestScs, type TestScs } from '../test/e2e/harness.ts';

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

/** Child: sends `rate` hellos per second for `seconds`, at most 1500 connections open at once. */
async function child(port: number, rate: number, seconds: number): Promise<void> {
  let open = 0;
  let sent = 0;
  let skipped = 0;
  let failed = 0;
  const pool = Array.from({ length: 512 }, hello);
  const started = performance.now();
  const end = started + seconds * 1000;
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    for (; sent + skipped < due;) {
      if (open >= 1500) {
        skipped++;
        continue;
      }
      open++;
      sent++;
      const bytes = pool[sent & 511] as Buffer;
      const s = net.connect({ host: '127.0.0.1', port, localAddress: attackerAddress() }, () => s.end(bytes));
      s.on('error', () => void failed++);
      s.on('close', () => void open--);
    }
    await sleep(5);
  }
  while (open > 0) await sleep(10);
  const ms = performance.now() - started;
  process.send?.({ sent, skipped, failed, ms }, () => process.disconnect());
}

async function provisionOne(scs: TestScs, port: number): Promise<number> {
  const psks = await addPsks(scs.store, 1, 'bench');
  await addPsks(scs.store, 2, 'bench', 'available');
  const before = scs.finished.length;
  const t0 = performance.now();
  const fleet = await fleetFor(scs, psks, port, { timeFactor: 0.05 });
  try {
    for (;;) {
      const f = scs.finished.slice(before).find((x) => x.job.pid === psks[0]?.pid);
      if (f !== undefined) {
        if (f.state !== 'succeeded') throw new Error(`the device failed: ${f.code ?? ''}`);
        return performance.now() - t0;
      }
      if (performance.now() - t0 > 300_000) throw new Error('the device was not provisioned in 300 s');
      await sleep(20);
    }
  } finally {
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
  const slow = arg('slow', 2000);
  const port = randomPort();
  const scs = await startTestScs({ amtTlsPort: port, config: { logLevel: 'warn' } });
  try {
    const baselineMs = await provisionOne(scs, port);
    global.gc?.();
    const idle = process.memoryUsage();
    let peakRss = idle.rss;
    let peakHeap = idle.heapUsed;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed);
    }, 100);
    const self = fileURLToPath(import.meta.url);
    const kids = Array.from({ length: children }, () =>
      fork(self, ['--child', String(scs.helloPort), String(rate / children), String(seconds)], {
        execArgv: ['--import', 'tsx'],
      }),
    );
    const results = kids.map(
      (k) => once(k, 'message') as Promise<[{ sent: number; skipped: number; failed: number; ms: number }]>,
    );
    const before = scs.server.listener.counters();
    await sleep(1000);
    const duringMs = await provisionOne(scs, port);
    const reports = (await Promise.all(results)).map(([r]) => r);
    await Promise.all(kids.map((k) => once(k, 'exit')));
    // Let the server finish what it took in.
    await sleep(1000);
    clearInterval(sampler);
    const after = scs.server.listener.counters();
    const sent = reports.reduce((n, r) => n + r.sent, 0);
    const floodMs = Math.max(...reports.map((r) => r.ms));

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
            helloMaxConnections: scs.server.config.helloMaxConnections,
            helloTimeoutMs: scs.server.config.helloTimeoutMs,
            helloMaxPending: scs.server.config.helloMaxPending,
            helloRateMaxTracked: scs.server.config.helloRateMaxTracked,
          },
          flood: {
            targetPerSecond: rate,
            children,
            sent,
            skippedAtClientCap: reports.reduce((n, r) => n + r.skipped, 0),
            clientErrors: reports.reduce((n, r) => n + r.failed, 0),
            seconds: Math.round(floodMs) / 1000,
            achievedPerSecond: Math.round(sent / (floodMs / 1000)),
          },
          server: {
            connectionsAccepted: after.connections - before.connections,
            decoded: after.received - before.received,
            droppedMaxConnections: after.dropped.maxConnections - before.dropped.maxConnections,
            droppedTimeout: after.dropped.timeout - before.dropped.timeout,
            rateLimited: await counter(scs, 'scs_hellos_rate_limited_total'),
            rejected: await counter(scs, 'scs_hellos_rejected_total'),
          },
          legitimateDevice: {
            baselineMs: Math.round(baselineMs),
            duringFloodMs: Math.round(duringMs),
            ratio: Math.round((duringMs / baselineMs) * 100) / 100,
          },
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

if (process.argv[2] === '--child') {
  await child(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]));
} else {
  await main();
}
