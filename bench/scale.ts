/**
 * Scale benchmark (issue 7, items 1 and 6): N simulated devices answering every HTTP request
 * after `--latency` ms, their first hellos spread evenly over `--spread-ms`, provisioned by the
 * real server (src/main.ts startServer, SQLite in a temp dir) running in a process of its own
 * (bench/scale-server.ts), so its CPU and RSS are its own and not the fleet's.
 *
 *   node --import tsx bench/scale.ts [--devices 10000] [--latency 200] [--spread-ms 60000]
 *        [--max-jobs N (default: --devices)] [--per-worker 2000] [--baseline-devices 5]
 *        [--deadline-s 1800] [--log-level warn] [--fleet-nice 0] [--out bench/out]
 *
 * Same run, side by side:
 * - baseline: `--baseline-devices` devices alone (same latency, same server, nothing else
 *   running) give the device's own time from hello to verified: its calls × latency plus the
 *   server's own work when idle. The slowest of them is "the slowest device's own call time ×
 *   calls".
 * - scale: N devices with the ramp. Expected wall = baseline slowest + the fleet's measured hello
 *   spread (first to last first-hello the server took); the ratio wall / expected is the figure
 *   (target ≤ 1.3).
 *
 * Writes bench/out/scale-<N>-<stamp>.json and bench/out/scale-<N>-<stamp>.svg (devices over time),
 * prints a readable summary on stdout. Figures: docs/performance.md.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, setPriority } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFleet, type Fleet } from '../simulator/fleet/fleet.ts';
import type { LogLevel } from '../src/config.ts';
import { Secret } from '../src/secret.ts';
import type { PskPair } from '../src/psk/formats/pair.ts';
import type { Pid } from '../src/psk/pid.ts';
import type { Pps } from '../src/psk/pps.ts';
import { scaleChart } from './chart-scale.ts';
import type { FinishedItem, FromServer, ServerSample, ToServer } from './scale-server.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const N = Number(arg('devices', '10000'));
const LATENCY = Number(arg('latency', '200'));
const SPREAD = Number(arg('spread-ms', '60000'));
const MAX_JOBS = Number(arg('max-jobs', String(N)));
const PER_WORKER = Number(arg('per-worker', '2000'));
const BASELINE = Number(arg('baseline-devices', '5'));
const DEADLINE_MS = Number(arg('deadline-s', '1800')) * 1000;
const LOG_LEVEL = arg('log-level', 'warn') as LogLevel;
const OUT = arg('out', path.join(path.dirname(fileURLToPath(import.meta.url)), 'out'));
/**
 * Niceness given to the fleet's worker processes (and this process): the simulated devices stand
 * for hardware that does not share the server's CPU, so on a shared machine the server gets the
 * larger share. 0 leaves them as they are.
 */
const FLEET_NICE = Number(arg('fleet-nice', '0'));
const MEBX = 'P@ssw0rd';
/** Per-session memory the issue allows (bytes). */
const RSS_PER_SESSION_TARGET = 50 * 1024;

for (const [name, v] of Object.entries({ N, LATENCY, SPREAD, MAX_JOBS, PER_WORKER, BASELINE })) {
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name} must be a whole number, got ${v}`);
}

const log = (line: string): void => void process.stderr.write(`scale: ${line}\n`);

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

/** utime + stime of a process in ms (Linux /proc, clock ticks of 10 ms). */
function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

/**
 * Length of the accept queue of the listening socket on 127.0.0.1:`port` (the rx_queue column
 * of /proc/net/tcp for a LISTEN socket): connections the kernel completed that the server has
 * not accepted yet. A full queue (the listen backlog) drops new SYNs.
 */
function acceptQueue(port: number): number {
  try {
    const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f[1] === want && f[3] === '0A') return parseInt((f[4] ?? '0:0').split(':')[1] ?? '0', 16);
    }
  } catch {
    // not Linux: no figure
  }
  return 0;
}

/** TcpExt counters of /proc/net/netstat (ListenOverflows: a full accept queue dropped a SYN). */
function tcpExt(): Record<string, number> {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    const i = lines.findIndex((l) => l.startsWith('TcpExt:'));
    const names = (lines[i] ?? '').split(' ').slice(1);
    const values = (lines[i + 1] ?? '').split(' ').slice(1).map(Number);
    return Object.fromEntries(names.map((n, k) => [n, values[k] ?? 0]));
  } catch {
    return {};
  }
}

// ---- the server process ---------------------------------------------------------------------

interface ServerHandle {
  readonly child: ChildProcess;
  readonly ready: Extract<FromServer, { type: 'ready' }>;
  readonly samples: ServerSample[];
  readonly finished: FinishedItem[];
  /** Resolves when `predicate` holds after a sample, or rejects after `ms`. */
  until(predicate: () => boolean, ms: number): Promise<boolean>;
  stop(): Promise<Extract<FromServer, { type: 'stopped' }>>;
}

async function startServerProcess(devices: number, amtTlsPort: number): Promise<ServerHandle> {
  const file = fileURLToPath(new URL('./scale-server.ts', import.meta.url));
  const child = fork(file, [], {
    execArgv: ['--import', import.meta.resolve('tsx'), '--no-warnings=ExperimentalWarning'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const samples: ServerSample[] = [];
  const finished: FinishedItem[] = [];
  const waiters = new Set<() => void>();
  let stopped: ((m: Extract<FromServer, { type: 'stopped' }>) => void) | undefined;
  const ready = await new Promise<Extract<FromServer, { type: 'ready' }>>((resolve, reject) => {
    child.on('message', (msg: FromServer) => {
      switch (msg.type) {
        case 'ready':
          resolve(msg);
          break;
        case 'sample':
          samples.push(msg);
          finished.push(...msg.finished);
          for (const w of [...waiters]) w();
          break;
        case 'stopped':
          stopped?.(msg);
          break;
        case 'failed':
          reject(new Error(`server process: ${msg.message}`));
          break;
      }
    });
    child.once('exit', (code) => reject(new Error(`server process exited (code ${code})`)));
    const start: ToServer = {
      type: 'start',
      devices,
      amtTlsPort,
      maxJobs: MAX_JOBS,
      logLevel: LOG_LEVEL,
      mebxPassword: MEBX,
    };
    child.send(start);
  });
  return {
    child,
    ready,
    samples,
    finished,
    until(predicate, ms) {
      if (predicate()) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          resolve(false);
        }, ms);
        const check = (): void => {
          if (!predicate()) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(true);
        };
        waiters.add(check);
      });
    },
    stop() {
      return new Promise((resolve) => {
        stopped = resolve;
        const msg: ToServer = { type: 'stop' };
        child.send(msg);
      });
    },
  };
}

function latest(samples: readonly ServerSample[]): ServerSample {
  const s = samples[samples.length - 1];
  if (s === undefined) throw new Error('no sample from the server process yet');
  return s;
}

// ---- one phase --------------------------------------------------------------------------------

interface PhaseResult {
  devices: number;
  succeeded: number;
  failed: number;
  failureCodes: Record<string, number>;
  /** First hello the server took → last device verified. */
  wallMs: number;
  devicesPerSec: number;
  /** First to last device's first hello, as the server's listener handed them over. */
  helloSpreadMs: number;
  /** Hello → verified by the runner's own clock (from the job's creation: store work excluded). */
  jobMs: { p50: number; p99: number };
  helloToVerifiedMs: { p50: number; p99: number; max: number; min: number };
  serverCpuMsPerDevice: number;
  serverCpuMs: { user: number; system: number };
  peakInFlight: number;
  peakQueued: number;
  rssBeforeMb: number;
  peakRssMb: number;
  /** (peak RSS − RSS before) / peak in-flight sessions. */
  rssPerInFlightKb: number | null;
  heapPerInFlightKb: number | null;
  peakFds: number;
  /** Longest stall of the server's event loop during the phase (ms). */
  maxLoopDelayMs: number;
  /** Kernel counters over the phase, for the whole machine (other work on it counts too). */
  kernel: { listenOverflows: number; listenDrops: number };
  /** Longest the hello port's accept queue grew (its backlog is 511 in Node by default). */
  peakAcceptQueue: number;
  fleet: {
    workers: number;
    startMs: number;
    helloAttempts: number;
    devicesWithHelloError: number;
    helloErrors: Record<string, number>;
    workersCpuMs: number;
    parentCpuMs: number;
  };
  server: { helloConnections: number; hellosReceived: number; duplicates: number };
  /** For the chart: seconds from the first hello, cumulative counts. */
  timeline: { t: number; accepted: number; verified: number; running: number; acceptQueue: number }[];
  firstHelloAt: number;
}

async function phase(
  server: ServerHandle,
  name: string,
  psks: PskPair[],
  opts: { spreadMs: number; processes: boolean },
): Promise<PhaseResult> {
  const n = psks.length;
  const s0 = latest(server.samples);
  const finishedBefore = server.finished.length;
  const cpuParent0 = process.cpuUsage();
  const kernel0 = tcpExt();
  let peakAcceptQueue = 0;
  const queueSamples: { at: number; q: number }[] = [];
  const queueTimer = setInterval(() => {
    const q = acceptQueue(server.ready.helloPort);
    peakAcceptQueue = Math.max(peakAcceptQueue, q);
    queueSamples.push({ at: Date.now(), q });
  }, 250);
  const t0 = Date.now();
  const fleet: Fleet = await startFleet({
    devices: n,
    psks,
    scs: `127.0.0.1:${server.ready.helloPort}`,
    tlsPort: TLS_PORT,
    httpPort: TLS_PORT + 1,
    addressBase: `127.${100 + randomInt(150)}.${randomInt(200)}.1`,
    latencyMs: LATENCY,
    helloSpreadMs: opts.spreadMs,
    workers: opts.processes ? 'processes' : 'inline',
    maxDevicesPerWorker: PER_WORKER,
    keyPoolSize: 16,
    mebxPassword: MEBX,
    seed: `scale-${name}`,
  });
  const startMs = Date.now() - t0;
  if (FLEET_NICE > 0) for (const pid of fleet.workerPids) setPriority(pid, FLEET_NICE);
  log(`${name}: ${n} devices up in ${(startMs / 1000).toFixed(1)} s (${fleet.workers} worker processes)`);
  const mine = (): FinishedItem[] => server.finished.slice(finishedBefore);
  let lastLog = Date.now();
  const done = await server.until(() => {
    const f = mine();
    const ok = f.filter((x) => x.ok).length;
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      const s = latest(server.samples);
      log(
        `${name}: verified ${ok}/${n}, failed ${f.length - ok}, in flight ${s.running}, queued ${s.queued}, ` +
          `server RSS ${Math.round(s.rss / 1048576)} MB, load ${loadavg()[0]?.toFixed(1)}`,
      );
    }
    return ok >= n;
  }, DEADLINE_MS);
  if (!done) log(`${name}: deadline passed`);
  const counts = fleet.counts();
  const helloErrors: Record<string, number> = {};
  for (const d of fleet.devices) {
    if (d.lastHelloError !== null) helloErrors[d.lastHelloError] = (helloErrors[d.lastHelloError] ?? 0) + 1;
  }
  const workersCpuMs = fleet.workerPids.reduce((a, pid) => a + procCpuMs(pid), 0);
  const cpuParent = process.cpuUsage(cpuParent0);
  const kernel1 = tcpExt();
  clearInterval(queueTimer);
  await fleet.stop();
  // One more sample so the last finished jobs and counters are in.
  const stoppedAt = Date.now();
  await server.until(() => latest(server.samples).at > stoppedAt, 2000);
  const samples = server.samples.filter((s) => s.at >= s0.at);
  const finished = mine();
  const ok = finished.filter((f) => f.ok);
  const times = ok.map((f) => f.at - f.helloAt).sort((a, b) => a - b);
  const helloAts = ok.map((f) => f.helloAt);
  const firstHelloAt = Math.min(...helloAts);
  const lastHelloAt = Math.max(...helloAts);
  const lastVerifiedAt = Math.max(...ok.map((f) => f.at));
  // CPU from the sample before the first hello to the sample after the last verification.
  const before = [...samples].reverse().find((s) => s.at <= firstHelloAt) ?? s0;
  const last = latest(samples);
  const after = samples.find((s) => s.at >= lastVerifiedAt) ?? last;
  const userMs = (after.userUs - before.userUs) / 1000;
  const systemMs = (after.systemUs - before.systemUs) / 1000;
  const peakInFlight = Math.max(0, ...samples.map((s) => s.peakRunning));
  const peakRss = Math.max(...samples.map((s) => s.rss));
  const peakHeap = Math.max(...samples.map((s) => s.heapUsed + s.external));
  const wallMs = lastVerifiedAt - firstHelloAt;
  const failureCodes: Record<string, number> = {};
  for (const f of finished) if (!f.ok) failureCodes[f.code ?? 'unknown'] = (failureCodes[f.code ?? 'unknown'] ?? 0) + 1;
  const sBefore = s0;
  // Timeline: cumulative counts per sample, from the first hello.
  let verified = 0;
  const sortedOk = ok.map((f) => f.at).sort((a, b) => a - b);
  const timeline = samples
    .filter((s) => s.at >= firstHelloAt - 250 && s.at <= lastVerifiedAt + 500)
    .map((s) => {
      while (verified < sortedOk.length && (sortedOk[verified] as number) <= s.at) verified++;
      return {
        t: Math.max(0, (s.at - firstHelloAt) / 1000),
        accepted: s.accepted - sBefore.accepted,
        verified,
        running: s.running,
        acceptQueue: [...queueSamples].reverse().find((x) => x.at <= s.at)?.q ?? 0,
      };
    });
  return {
    devices: n,
    succeeded: ok.length,
    failed: finished.length - ok.length,
    failureCodes,
    wallMs,
    devicesPerSec: Math.round((ok.length / wallMs) * 1000 * 10) / 10,
    helloSpreadMs: lastHelloAt - firstHelloAt,
    jobMs: (() => {
      const j = ok.map((f) => f.ms).sort((a, b) => a - b);
      return { p50: percentile(j, 50), p99: percentile(j, 99) };
    })(),
    helloToVerifiedMs: {
      min: times[0] ?? 0,
      p50: percentile(times, 50),
      p99: percentile(times, 99),
      max: times.at(-1) ?? 0,
    },
    serverCpuMsPerDevice: Math.round(((userMs + systemMs) / Math.max(1, ok.length)) * 100) / 100,
    serverCpuMs: { user: Math.round(userMs), system: Math.round(systemMs) },
    peakInFlight,
    peakQueued: Math.max(0, ...samples.map((s) => s.queued)),
    rssBeforeMb: Math.round(sBefore.rss / 1048576),
    peakRssMb: Math.round(peakRss / 1048576),
    rssPerInFlightKb: peakInFlight === 0 ? null : Math.round((peakRss - sBefore.rss) / peakInFlight / 102.4) / 10,
    heapPerInFlightKb:
      peakInFlight === 0
        ? null
        : Math.round((peakHeap - sBefore.heapUsed - sBefore.external) / peakInFlight / 102.4) / 10,
    peakFds: Math.max(...samples.map((s) => s.fds)),
    maxLoopDelayMs: Math.max(...samples.map((s) => s.maxLoopDelayMs)),
    peakAcceptQueue,
    kernel: {
      listenOverflows: (kernel1.ListenOverflows ?? 0) - (kernel0.ListenOverflows ?? 0),
      listenDrops: (kernel1.ListenDrops ?? 0) - (kernel0.ListenDrops ?? 0),
    },
    fleet: {
      workers: fleet.workers,
      startMs,
      helloAttempts: counts.hellos,
      devicesWithHelloError: Object.values(helloErrors).reduce((a, b) => a + b, 0),
      helloErrors,
      workersCpuMs,
      parentCpuMs: Math.round((cpuParent.user + cpuParent.system) / 1000),
    },
    server: {
      helloConnections: last.helloConnections - sBefore.helloConnections,
      hellosReceived: last.hellosReceived - sBefore.hellosReceived,
      duplicates: last.duplicates - sBefore.duplicates,
    },
    timeline,
    firstHelloAt,
  };
}

// ---- main ------------------------------------------------------------------------------------

const TLS_PORT = 20_000 + randomInt(40_000);
const load0 = loadavg();
log(
  `${N} devices, latency ${LATENCY} ms, spread ${SPREAD} ms, maxJobs ${MAX_JOBS}, load ${load0.map((l) => l.toFixed(2)).join(' ')}`,
);
const server = await startServerProcess(N + BASELINE, TLS_PORT);
log(`server process ${server.ready.pid} ready (open files: ${server.ready.fdLimit})`);
// This process hosts the baseline devices and the fleet's bookkeeping: devices, not server (set
// after the fork, which would otherwise inherit it).
if (FLEET_NICE > 0) setPriority(FLEET_NICE);
await server.until(() => server.samples.length > 0, 5000);
const pairs: PskPair[] = server.ready.psks.map((p) => ({ pid: p.pid as Pid, pps: new Secret(p.pps as Pps) }));
const baseline = await phase(server, 'baseline', pairs.slice(0, BASELINE), { spreadMs: 0, processes: false });
log(
  `baseline: ${baseline.succeeded}/${BASELINE} verified, slowest ${baseline.helloToVerifiedMs.max} ms, ` +
    `server CPU ${baseline.serverCpuMsPerDevice} ms/device`,
);
const loadBefore = loadavg();
const scale = await phase(server, 'scale', pairs.slice(BASELINE), { spreadMs: SPREAD, processes: N > PER_WORKER });
const loadAfter = loadavg();
const stopped = await server.stop();

const expectedWallMs = baseline.helloToVerifiedMs.max + scale.helloSpreadMs;
const wallRatio = Math.round((scale.wallMs / expectedWallMs) * 100) / 100;
/** Against the ramp the fleet was asked for: a measured spread grows when hellos are lost. */
const nominalWallRatio = Math.round((scale.wallMs / (baseline.helloToVerifiedMs.max + SPREAD)) * 100) / 100;
const hellosDropped =
  stopped.hello.dropped.maxConnections +
  stopped.hello.dropped.timeout +
  stopped.hello.dropped.reset +
  Object.values(stopped.hello.malformed).reduce((a, b) => a + (b ?? 0), 0);
const fleetAttempts = baseline.fleet.helloAttempts + scale.fleet.helloAttempts;
const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
mkdirSync(OUT, { recursive: true });
const base = path.join(OUT, `scale-${N}-${stamp}`);
const { timeline, ...scaleFigures } = scale;
const result = {
  benchmark: 'scale',
  node: process.version,
  cpus: cpus().length,
  settings: {
    devices: N,
    latencyMs: LATENCY,
    helloSpreadMs: SPREAD,
    maxJobs: MAX_JOBS,
    perWorker: PER_WORKER,
    baselineDevices: BASELINE,
    logLevel: LOG_LEVEL,
    fleetNice: FLEET_NICE,
  },
  loadAverage: { atStart: load0, beforeScale: loadBefore, afterScale: loadAfter },
  serverFdLimit: server.ready.fdLimit,
  helloPort: server.ready.helloPort,
  baseline: { ...baseline, timeline: undefined },
  scale: scaleFigures,
  expected: {
    slowestDeviceOwnMs: baseline.helloToVerifiedMs.max,
    helloSpreadMs: scale.helloSpreadMs,
    wallMs: expectedWallMs,
  },
  ratio: {
    wallToExpected: wallRatio,
    wallToExpectedWithNominalSpread: nominalWallRatio,
    serverCpuPerDeviceToBaseline: Math.round((scale.serverCpuMsPerDevice / baseline.serverCpuMsPerDevice) * 100) / 100,
  },
  hellos: {
    fleetAttempts,
    serverConnections: stopped.hello.connections,
    serverReceived: stopped.hello.received,
    dropped: hellosDropped,
    droppedDetail: stopped.hello.dropped,
    malformed: stopped.hello.malformed,
    notReceived: fleetAttempts - stopped.hello.received,
  },
  runner: stopped.runner,
  serverPeakRssMbKernel: Math.round(stopped.peakRss / 1048576),
  targets: {
    noFailure: scale.failed === 0 && scale.succeeded === N,
    noHelloDropped: hellosDropped === 0 && fleetAttempts === stopped.hello.received,
    rssPerInFlightAtMost50Kb:
      scale.rssPerInFlightKb !== null && scale.rssPerInFlightKb * 1024 <= RSS_PER_SESSION_TARGET,
    // #7 defines the expected wall with the fleet's hello spread, i.e. the ramp it was given: the
    // spread the server saw grows with every lost hello, so judging by it would hide the loss.
    wallRatioAtMost1_3: nominalWallRatio <= 1.3,
  },
  timeline,
};
writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);

const svg = scaleChart(result);
writeFileSync(`${base}.svg`, svg);

const mb = (n: number): string => `${n} MB`;
process.stdout.write(
  [
    `scale: ${N} devices, ${LATENCY} ms per call, first hellos over ${SPREAD / 1000} s, maxJobs ${MAX_JOBS}, node ${process.version}, ${cpus().length} cores`,
    `load average: start ${load0[0]?.toFixed(2)}, before scale ${loadBefore[0]?.toFixed(2)}, after ${loadAfter[0]?.toFixed(2)}`,
    '',
    `                              baseline (${BASELINE} alone)   scale (${N})`,
    `verified / failed             ${`${baseline.succeeded} / ${baseline.failed}`.padEnd(22)}${scale.succeeded} / ${scale.failed} ${JSON.stringify(scale.failureCodes)}`,
    `wall (first hello → last)     ${`${(baseline.wallMs / 1000).toFixed(1)} s`.padEnd(22)}${(scale.wallMs / 1000).toFixed(1)} s`,
    `devices/s                     ${String(baseline.devicesPerSec).padEnd(22)}${scale.devicesPerSec}`,
    `hello → verified p50 / p99    ${`${baseline.helloToVerifiedMs.p50} / ${baseline.helloToVerifiedMs.p99} ms`.padEnd(22)}${scale.helloToVerifiedMs.p50} / ${scale.helloToVerifiedMs.p99} ms (max ${scale.helloToVerifiedMs.max})`,
    `server CPU per device         ${`${baseline.serverCpuMsPerDevice} ms`.padEnd(22)}${scale.serverCpuMsPerDevice} ms (user ${scale.serverCpuMs.user} + system ${scale.serverCpuMs.system} ms in all)`,
    `peak in-flight sessions       ${String(baseline.peakInFlight).padEnd(22)}${scale.peakInFlight} (queued peak ${scale.peakQueued})`,
    `server RSS before → peak      ${`${mb(baseline.rssBeforeMb)} → ${mb(baseline.peakRssMb)}`.padEnd(22)}${mb(scale.rssBeforeMb)} → ${mb(scale.peakRssMb)}`,
    `RSS per in-flight session     ${'-'.padEnd(22)}${scale.rssPerInFlightKb} KB (heap+external ${scale.heapPerInFlightKb} KB; target ≤ 50 KB)`,
    `server open files peak        ${String(baseline.peakFds).padEnd(22)}${scale.peakFds} (limit ${server.ready.fdLimit})`,
    `server event-loop stall max   ${`${baseline.maxLoopDelayMs} ms`.padEnd(22)}${scale.maxLoopDelayMs} ms`,
    `hello accept queue peak       ${String(baseline.peakAcceptQueue).padEnd(22)}${scale.peakAcceptQueue} (kernel ListenOverflows during the phase, whole machine: ${scale.kernel.listenOverflows})`,
    `fleet CPU (workers + parent)  ${`${baseline.fleet.parentCpuMs} ms`.padEnd(22)}${scale.fleet.workersCpuMs} + ${scale.fleet.parentCpuMs} ms; fleet start ${(scale.fleet.startMs / 1000).toFixed(1)} s`,
    '',
    `expected wall = slowest device alone ${baseline.helloToVerifiedMs.max} ms + hello spread ${scale.helloSpreadMs} ms = ${expectedWallMs} ms; ratio ${wallRatio}; with the nominal ${SPREAD} ms ramp: ${nominalWallRatio} (target ≤ 1.3)`,
    `hellos: fleet attempted ${fleetAttempts}, server received ${stopped.hello.received} (connections ${stopped.hello.connections}), dropped by the listener ${hellosDropped}, devices whose last hello failed ${scale.fleet.devicesWithHelloError} ${JSON.stringify(scale.fleet.helloErrors)}`,
    `targets: ${JSON.stringify(result.targets)}`,
    `written: ${base}.json, ${base}.svg`,
    '',
  ].join('\n'),
);
