/**
 * Hello intake benchmark (issue 7 item 4), two parts, each against a baseline in the same run:
 *
 * 1. Decoding: decodeHello (incremental decoder, every field checked, PID check character
 *    verified) against a bare Buffer read of the same fields into the same object (no checks),
 *    on the same 32-byte version 2 hellos, alternating rounds. Target: ≥ 0.5× of bare.
 * 2. TCP intake: hellos accepted per second by our intake (src/hello/listener.ts with the server's
 *    default limits, then admission's gate from src/hello/rate-limit.ts) over loopback from
 *    `--senders` concurrent connections, against a bare net.Server that reads the 32 bytes and
 *    counts; rounds alternate and swap order. The senders are bench/hello-sender.c (a C epoll
 *    loop in a process of its own, built here; `--node-senders`: bench/hello-senders.ts, which
 *    costs as much CPU as the server and was the bottleneck), one connection per hello as
 *    devices do, from `--addresses` distinct 127.x.y.z sources (default one per hello, as a
 *    fleet). Reported per side: hellos/s at the receiver and its CPU µs per hello (the load-
 *    independent figure). Target: ≥ 10,000/s with no loss (every hello sent is received).
 *
 * 3. Gate: µs per admission with a new address and PID each time through full tables (a flood
 *    from many sources), ours and (with --base) the base's.
 *
 * `--base DIR` adds a third side: the listener and gate of another checkout (a worktree of the
 * commit to compare with), in the same run.
 *
 * Run: node --import tsx bench/hello.ts [--seconds 2] [--senders 1000] [--hellos 40000] [--rounds 2]
 *        [--addresses N] [--node-senders] [--base DIR] [--no-tcp]
 * Writes bench/out/hello-<stamp>.json and prints a readable summary.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeHello, HelloDecoder } from '../src/hello/decode.ts';
import { createHelloListener } from '../src/hello/listener.ts';
import { createHelloGate } from '../src/hello/rate-limit.ts';
import { formatUuid } from '../src/hello/uuid.ts';
import { loadConfig } from '../src/config.ts';
import { generatePid } from '../src/psk/generate.ts';
import { buildCSender, runCSender } from './hello-c-sender.ts';
import type { SendOrder, SendReport } from './hello-senders.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i > 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}
const seconds = arg('seconds', 2);
const SENDERS = arg('senders', 1000);
const HELLOS = arg('hellos', 40_000);
const ROUNDS = arg('rounds', 2);
/** Distinct source addresses per round (C sender; at most 64,000): by default one per hello, as a fleet. */
const ADDRESSES = Math.min(64_000, arg('addresses', HELLOS));
const SENDER = process.argv.includes('--node-senders') ? 'node' : 'c';
/** The server's defaults (src/config.ts): limits, timeout, backlog. */
const defaults = loadConfig({ flags: {}, env: {} });
const load0 = loadavg();

/** 256 distinct valid hellos (protocol.md §1a), so no branch predictor sees one message only. */
const hellos: Buffer[] = Array.from({ length: 256 }, (_, i) => {
  const b = Buffer.alloc(32);
  b.writeUInt16LE(i & 1, 0);
  b.writeUInt16LE(2, 2);
  b.writeUInt32LE(i % 15, 4);
  for (let k = 0; k < 16; k++) b[8 + k] = (i * 31 + k * 7) & 0xff;
  b.write(generatePid(), 24, 'latin1');
  return b;
});

function bare(b: Buffer): object {
  return {
    version: b.readUInt16LE(2),
    adminCredentialsSet: b.readUInt16LE(0) === 1,
    retryCount: b.readUInt32LE(4),
    uuid: formatUuid(b, 8),
    pid: b.toString('latin1', 24, 32),
  };
}

function run(decode: (b: Buffer) => object, ms: number): { ops: number; ms: number } {
  const start = performance.now();
  let ops = 0;
  let sink = 0;
  while (performance.now() - start < ms) {
    for (let i = 0; i < 1024; i++) {
      const h = decode(hellos[i & 255] as Buffer) as { retryCount: number };
      sink += h.retryCount;
    }
    ops += 1024;
  }
  if (sink < 0) console.error(sink);
  return { ops, ms: performance.now() - start };
}

const split = (b: Buffer): object => {
  // The same message delivered in two TCP reads.
  const d = new HelloDecoder();
  d.push(b.subarray(0, 13));
  d.push(b.subarray(13));
  return d.end();
};

const sides = { decodeHello, split, bare } as const;
type Side = keyof typeof sides;
for (const fn of Object.values(sides)) run(fn, 200);
const totals: Record<Side, { ops: number; ms: number }> = {
  decodeHello: { ops: 0, ms: 0 },
  split: { ops: 0, ms: 0 },
  bare: { ops: 0, ms: 0 },
};
const rounds = 6;
for (let r = 0; r < rounds; r++) {
  for (const side of Object.keys(sides) as Side[]) {
    const m = run(sides[side], (seconds * 1000) / (rounds * 3));
    totals[side].ops += m.ops;
    totals[side].ms += m.ms;
  }
}
const rate = (s: Side) => (totals[s].ops * 1000) / totals[s].ms;
const ratio = rate('decodeHello') / rate('bare');
const decoding = {
  what: 'decode a 32-byte version 2 hello into {version, adminCredentialsSet, retryCount, uuid, pid}',
  decodeHelloPerSec: Math.round(rate('decodeHello')),
  decodeInTwoReadsPerSec: Math.round(rate('split')),
  bareBufferReadPerSec: Math.round(rate('bare')),
  ratio: Number(ratio.toFixed(2)),
  target: 0.5,
  meetsTarget: ratio >= 0.5,
};

// ---- TCP intake ------------------------------------------------------------------------------

interface Receiver {
  port: number;
  received(): number;
  firstAt(): number;
  lastAt(): number;
  dropped(): number;
  /** Refused by admission's gate (rate limits): none expected, each address and PID is new. */
  limited(): number;
  close(): Promise<void>;
}

function stamps(): { mark(): void; first: number; last: number } {
  const s = {
    first: 0,
    last: 0,
    mark() {
      const now = performance.now();
      if (s.first === 0) s.first = now;
      s.last = now;
    },
  };
  return s;
}

/** Our intake as the server runs it: the listener, then admission's gate (buckets per address and PID). */
interface IntakeModules {
  createHelloListener: typeof createHelloListener;
  createHelloGate: typeof createHelloGate;
}

/**
 * `--base DIR`: a third side, the listener and gate of another checkout (a worktree of the
 * commit to compare with: git worktree add /work/wt-base <commit>), in this same run.
 */
const BASE_DIR = (() => {
  const i = process.argv.indexOf('--base');
  return i > 0 ? process.argv[i + 1] : undefined;
})();
const ours: IntakeModules = { createHelloListener, createHelloGate };
const base: IntakeModules | undefined =
  BASE_DIR === undefined
    ? undefined
    : {
        createHelloListener: ((await import(path.resolve(BASE_DIR, 'src/hello/listener.ts'))) as IntakeModules)
          .createHelloListener,
        createHelloGate: ((await import(path.resolve(BASE_DIR, 'src/hello/rate-limit.ts'))) as IntakeModules)
          .createHelloGate,
      };

async function listenerReceiver(modules: IntakeModules = ours): Promise<Receiver> {
  const { createHelloListener, createHelloGate } = modules;
  let n = 0;
  let limited = 0;
  const t = stamps();
  const gate = createHelloGate({
    address: { burst: defaults.helloRateAddressBurst, perMinute: defaults.helloRateAddressPerMinute },
    pid: { burst: defaults.helloRatePidBurst, perMinute: defaults.helloRatePidPerMinute },
    maxTracked: defaults.helloRateMaxTracked,
    maxPending: defaults.helloMaxPending,
  });
  const listener = createHelloListener({
    host: '127.0.0.1',
    port: 0,
    maxConnections: defaults.helloMaxConnections,
    maxConnectionsPerAddress: defaults.helloMaxConnectionsPerAddress,
    timeoutMs: defaults.helloTimeoutMs,
    onHello: (hello, remoteAddress) => {
      const admission = gate.admit(hello.version === 2 ? hello.pid : undefined, remoteAddress);
      if (admission.ok) admission.release();
      else limited++;
      n++;
      t.mark();
    },
  });
  const { port } = await listener.listen();
  return {
    port,
    received: () => n,
    firstAt: () => t.first,
    lastAt: () => t.last,
    dropped: () => {
      const c = listener.counters();
      return c.dropped.maxConnections + c.dropped.perAddress + c.dropped.reset + c.dropped.timeout + c.handlerErrors;
    },
    limited: () => limited,
    close: () => listener.close(),
  };
}

/** The baseline: accept, collect 32 bytes, read the fields at the end, close. No checks, no timer. */
async function bareReceiver(): Promise<Receiver> {
  let n = 0;
  let sink = 0;
  const t = stamps();
  const server = net.createServer((socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('end', () => {
      socket.destroy();
      const b = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      if (b.length < 32) return;
      sink += (bare(b) as { retryCount: number }).retryCount;
      n++;
      t.mark();
    });
  });
  server.listen(0, '127.0.0.1', defaults.helloBacklog);
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => n + (sink < 0 ? 1 : 0),
    firstAt: () => t.first,
    lastAt: () => t.last,
    dropped: () => 0,
    limited: () => 0,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

interface TcpRound {
  side: Side2;
  sent: number;
  received: number;
  lost: number;
  dropped: number;
  limited: number;
  senderErrors: Record<string, number>;
  /** Received ÷ (last − first receive), at the receiving side. */
  perSec: number;
  /** CPU (user + system) of the receiving process per hello received, in µs. */
  cpuUsPerHello: number;
  /** C sender only: connect to the server's close, p50 / p99 ms. */
  latencyMs?: { p50: number; p99: number; max: number };
  loadAverage: number;
}

interface Sender {
  send(
    port: number,
    round: number,
  ): Promise<{ sent: number; errors: Record<string, number>; latencyMs?: TcpRound['latencyMs'] }>;
  close(): void;
}

/** The C sender (default): one epoll loop in a process of its own, fresh random hellos. */
function cSender(): Sender {
  buildCSender();
  return {
    async send(port, round) {
      const r = await runCSender({
        port,
        total: HELLOS,
        concurrency: SENDERS,
        prefix: `127.${20 + round}`,
        addresses: ADDRESSES,
      });
      return { sent: r.completed, errors: { ...r.errors }, latencyMs: r.latencyMs };
    },
    close: () => undefined,
  };
}

/** The Node sender (bench/hello-senders.ts), kept to show what it measured. */
function nodeSender(): Sender {
  const child = fork(fileURLToPath(new URL('./hello-senders.ts', import.meta.url)), [], {
    execArgv: ['--import', import.meta.resolve('tsx'), '--no-warnings=ExperimentalWarning'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return {
    async send(port, round) {
      const order: SendOrder = {
        type: 'send',
        port,
        senders: SENDERS,
        total: HELLOS,
        addressPrefix: `127.${20 + round}`,
      };
      const reply = once(child, 'message') as Promise<[SendReport]>;
      child.send(order);
      const [report] = await reply;
      return { sent: report.sent, errors: report.errors };
    },
    close: () => child.disconnect(),
  };
}

type Side2 = 'listener' | 'bare' | 'base';
const SIDES: readonly Side2[] = base === undefined ? ['listener', 'bare'] : ['listener', 'bare', 'base'];

async function tcpIntake(): Promise<{ rounds: TcpRound[]; listener: Summary; bare: Summary; base?: Summary }> {
  const sender = SENDER === 'node' ? nodeSender() : cSender();
  const rounds: TcpRound[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // Each round starts with a different side.
      const order = SIDES.map((_, i) => SIDES[(i + r) % SIDES.length] as Side2);
      for (const side of order) {
        const receiver =
          side === 'listener'
            ? await listenerReceiver()
            : side === 'base'
              ? await listenerReceiver(base)
              : await bareReceiver();
        const cpu0 = process.cpuUsage();
        const report = await sender.send(receiver.port, r);
        // The last hellos may still be in the receiver's event loop.
        for (let i = 0; i < 100 && receiver.received() < report.sent; i++) await new Promise((x) => setTimeout(x, 20));
        const cpu = process.cpuUsage(cpu0);
        const received = receiver.received();
        const secs = (receiver.lastAt() - receiver.firstAt()) / 1000;
        rounds.push({
          side,
          sent: report.sent,
          received,
          lost: report.sent - received,
          dropped: receiver.dropped(),
          limited: receiver.limited(),
          senderErrors: report.errors,
          perSec: Math.round(received / secs),
          cpuUsPerHello: Math.round(((cpu.user + cpu.system) / Math.max(1, received)) * 10) / 10,
          ...(report.latencyMs === undefined ? {} : { latencyMs: report.latencyMs }),
          loadAverage: Number(loadavg()[0]?.toFixed(2)),
        });
        await receiver.close();
        process.stderr.write(`hello: tcp round ${r + 1} ${side}: ${JSON.stringify(rounds.at(-1))}\n`);
      }
    }
  } finally {
    sender.close();
  }
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const sum = (side: Side2): Summary => {
    const rs = rounds.filter((x) => x.side === side);
    const received = rs.reduce((a, x) => a + x.received, 0);
    return {
      perSecMedian: median(rs.map((x) => x.perSec)),
      perSecAll: rs.map((x) => x.perSec),
      cpuUsPerHelloMedian: median(rs.map((x) => x.cpuUsPerHello)),
      sent: rs.reduce((a, x) => a + x.sent, 0),
      received,
      lost: rs.reduce((a, x) => a + x.lost, 0),
      senderErrors: rs.reduce((a, x) => a + Object.values(x.senderErrors).reduce((p, q) => p + q, 0), 0),
    };
  };
  return {
    rounds,
    listener: sum('listener'),
    bare: sum('bare'),
    ...(base === undefined ? {} : { base: sum('base') }),
  };
}

interface Summary {
  perSecMedian: number;
  perSecAll: number[];
  cpuUsPerHelloMedian: number;
  sent: number;
  received: number;
  lost: number;
  senderErrors: number;
}

// ---- Admission gate under a flood of new keys ------------------------------------------------

/**
 * µs per `admit` with a new address and a new PID each time, the tables already full
 * (helloRateMaxTracked keys seen): what a flood from many sources costs the gate.
 */
function gateFlood(modules: IntakeModules): number {
  const gate = modules.createHelloGate({
    address: { burst: defaults.helloRateAddressBurst, perMinute: defaults.helloRateAddressPerMinute },
    pid: { burst: defaults.helloRatePidBurst, perMinute: defaults.helloRatePidPerMinute },
    maxTracked: defaults.helloRateMaxTracked,
    maxPending: defaults.helloMaxPending,
  });
  const key = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const admit = (i: number): void => {
    const a = gate.admit(`P${i}`, key(i));
    if (a.ok) a.release();
  };
  let i = 0;
  for (; i < defaults.helloRateMaxTracked; i++) admit(i);
  const n = 100_000;
  const t0 = performance.now();
  for (const end = i + n; i < end; i++) admit(i);
  return Math.round(((performance.now() - t0) * 1000 * 100) / n) / 100;
}
const gate = {
  what: `µs per admit, a new address and PID each, tables full (${defaults.helloRateMaxTracked} keys)`,
  ours: gateFlood(ours),
  ...(base === undefined ? {} : { base: gateFlood(base) }),
};

const tcp = process.argv.includes('--no-tcp') ? undefined : await tcpIntake();
const result = {
  bench: 'hello',
  node: process.version,
  cpus: cpus().length,
  loadAverage: { atStart: load0, atEnd: loadavg() },
  decoding,
  gate,
  tcp:
    tcp === undefined
      ? null
      : {
          what: `hellos accepted per second over loopback TCP, ${SENDERS} concurrent senders (${SENDER === 'c' ? 'bench/hello-sender.c' : 'bench/hello-senders.ts'}, one connection per hello, ${SENDER === 'c' ? `${ADDRESSES} source addresses` : 'each sender its own 127.x address'}), ${HELLOS} hellos per round`,
          listener: tcp.listener,
          bare: tcp.bare,
          ...(tcp.base === undefined ? {} : { base: { dir: BASE_DIR, ...tcp.base } }),
          ratioToBare: Number((tcp.listener.perSecMedian / tcp.bare.perSecMedian).toFixed(2)),
          target: 10_000,
          meetsTarget:
            tcp.listener.perSecMedian >= 10_000 && tcp.listener.lost === 0 && tcp.listener.senderErrors === 0,
          rounds: tcp.rounds,
        },
};
const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'out');
mkdirSync(out, { recursive: true });
const file = path.join(out, `hello-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(
  [
    `hello intake, node ${process.version}, ${cpus().length} cores, load average ${load0[0]?.toFixed(2)} → ${loadavg()[0]?.toFixed(2)}`,
    `decode:  decodeHello ${decoding.decodeHelloPerSec.toLocaleString('en-US')}/s, in two reads ${decoding.decodeInTwoReadsPerSec.toLocaleString('en-US')}/s, bare Buffer read ${decoding.bareBufferReadPerSec.toLocaleString('en-US')}/s: ratio ${decoding.ratio} (target ≥ 0.5)`,
    `gate:    ${gate.ours} µs per admit with new keys through full tables${gate.base === undefined ? '' : `, base ${gate.base} µs`}`,
    ...(tcp === undefined
      ? []
      : [
          `tcp:     listener ${tcp.listener.perSecMedian.toLocaleString('en-US')}/s (rounds ${tcp.listener.perSecAll.join(', ')}), bare net.Server ${tcp.bare.perSecMedian.toLocaleString('en-US')}/s (rounds ${tcp.bare.perSecAll.join(', ')}); ratio ${result.tcp?.ratioToBare}`,
          `         CPU per hello: listener ${tcp.listener.cpuUsPerHelloMedian} µs, bare ${tcp.bare.cpuUsPerHelloMedian} µs (${SENDER} senders)`,
          ...(tcp.base === undefined
            ? []
            : [
                `         base (${BASE_DIR}): ${tcp.base.perSecMedian.toLocaleString('en-US')}/s (rounds ${tcp.base.perSecAll.join(', ')}), CPU per hello ${tcp.base.cpuUsPerHelloMedian} µs`,
              ]),
          `         listener: sent ${tcp.listener.sent}, received ${tcp.listener.received}, lost ${tcp.listener.lost}, sender errors ${tcp.listener.senderErrors} (target ≥ 10,000/s, no loss: ${result.tcp?.meetsTarget === true ? 'met' : 'NOT met'})`,
        ]),
    `written: ${file}`,
    '',
  ].join('\n'),
);
