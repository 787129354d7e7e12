/**
 * The server side of bench/scale.ts, in a process of its own so that its CPU and memory are its
 * own: the real server (src/main.ts startServer, SQLite in a temp dir, log level warn), PSKs
 * seeded, the default profile given the fleet's MEBx password. Forked by bench/scale.ts with an
 * IPC channel; never run by hand.
 *
 * Protocol (ToServer / FromServer below): the parent sends `start`; the child answers `ready`
 * with the hello port and the PSK pairs for the fleet (PPS values over the local IPC pipe only,
 * as the fleet does with its workers), then a `sample` every 250 ms (CPU, RSS, jobs running,
 * finished jobs since the last sample) until `stop`, answered by `stopped` with the final
 * counters, then it exits.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadConfig, type LogLevel } from '../src/config.ts';
import type { HelloCounters } from '../src/hello/listener.ts';
import { createLogger } from '../src/log.ts';
import { startServer } from '../src/main.ts';
import type { RunnerStats } from '../src/provisioning/runner.ts';
import { generatePid, generatePps } from '../src/psk/generate.ts';
import { Secret } from '../src/secret.ts';

export interface StartServer {
  readonly type: 'start';
  /** PSKs to seed for devices (state exported), plus as many available ones for renewals. */
  readonly devices: number;
  readonly amtTlsPort: number;
  readonly maxJobs: number;
  readonly logLevel: LogLevel;
  readonly mebxPassword: string;
  /** config callTimeoutMs (default: the config's, 30 s). */
  readonly callTimeoutMs?: number;
}

export type ToServer = StartServer | { readonly type: 'stop' };

export interface FinishedItem {
  /** Date.now() when the job ended. */
  readonly at: number;
  /** Date.now() when the listener handed over this device's first hello (before any store work). */
  readonly helloAt: number;
  /** Hello → end (ms). */
  readonly ms: number;
  readonly ok: boolean;
  readonly code: string | null;
}

export interface ServerSample {
  readonly type: 'sample';
  readonly at: number;
  /** process.cpuUsage() since the child started (µs). */
  readonly userUs: number;
  readonly systemUs: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  /** Open file descriptors (/proc/self/fd). */
  readonly fds: number;
  readonly running: number;
  /** Longest event-loop stall since the last sample (ms): a stalled loop accepts no hello. */
  readonly maxLoopDelayMs: number;
  /** Highest `running` seen since the last sample (checked every 50 ms). */
  readonly peakRunning: number;
  readonly queued: number;
  readonly accepted: number;
  readonly duplicates: number;
  /** Hello listener: connections accepted, well-formed hellos handed over. */
  readonly helloConnections: number;
  readonly hellosReceived: number;
  readonly finished: readonly FinishedItem[];
}

export type FromServer =
  | {
      readonly type: 'ready';
      readonly helloPort: number;
      readonly pid: number;
      readonly psks: readonly { readonly pid: string; readonly pps: string }[];
      readonly fdLimit: string;
    }
  | ServerSample
  | {
      readonly type: 'stopped';
      readonly runner: RunnerStats;
      readonly hello: HelloCounters;
      readonly peakRss: number;
    }
  | { readonly type: 'failed'; readonly message: string };

function send(msg: FromServer): void {
  process.send?.(msg);
}

/** Open file descriptors (Linux /proc); a readdir every 250 ms is cheap next to the work measured. */
function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

function fdLimit(): string {
  const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m === null ? 'unknown' : `${m[1]} soft / ${m[2]} hard`;
}

function peakRssKb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? 0 : Number(m[1]);
}

async function run(start: StartServer): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'scs-scale-'));
  const config = loadConfig({
    flags: {
      dataDir: dir,
      helloHost: '127.0.0.1',
      helloPort: 0,
      amtTlsPort: start.amtTlsPort,
      maxJobs: start.maxJobs,
      logLevel: start.logLevel,
      ...(start.callTimeoutMs === undefined ? {} : { callTimeoutMs: start.callTimeoutMs }),
    },
    env: {},
  });
  const log = createLogger(config.logLevel);
  const server = await startServer(config, { log, actor: 'scs:bench' });
  const pairs = (n: number) =>
    Array.from({ length: n }, () => ({ pid: generatePid(), pps: new Secret(generatePps()) }));
  const devicePsks = pairs(start.devices);
  // Exported PSKs the devices hold, and as many available ones for the renewal each job takes.
  await server.store.psks.insertMany(
    [
      ...devicePsks.map((p) => ({ ...p, batch: 'scale', state: 'exported' as const })),
      ...pairs(start.devices).map((p) => ({ ...p, batch: 'scale' })),
    ],
    { actor: 'bench', source: 'generate' },
  );
  await server.store.profiles.update(
    'default',
    { secrets: { currentMebxPassword: new Secret(start.mebxPassword) } },
    { actor: 'bench' },
  );

  // The first arrival of each device's hello, timed where the listener hands it over (the
  // runner's own clock starts after the PSK/job transaction, which queues under load).
  const firstHello = new Map<string, number>();
  const accept = server.runner.accept.bind(server.runner);
  server.runner.accept = (hello, remote) => {
    if (!firstHello.has(hello.uuid)) firstHello.set(hello.uuid, Date.now());
    return accept(hello, remote);
  };
  let finished: FinishedItem[] = [];
  server.runner.on('finished', (f) => {
    const at = Date.now();
    finished.push({
      at,
      helloAt: firstHello.get(f.job.deviceUuid) ?? at - f.ms,
      ms: Math.round(f.ms),
      ok: f.state === 'succeeded',
      code: f.code,
    });
  });
  let peakRunning = 0;
  const watch = setInterval(() => {
    peakRunning = Math.max(peakRunning, server.runner.stats().running);
  }, 50);
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  const sample = (): void => {
    const cpu = process.cpuUsage();
    const maxLoopDelayMs = Math.round(loop.max / 1e6);
    loop.reset();
    const mem = process.memoryUsage();
    const stats = server.runner.stats();
    const hello = server.listener.counters();
    peakRunning = Math.max(peakRunning, stats.running);
    send({
      type: 'sample',
      at: Date.now(),
      userUs: cpu.user,
      systemUs: cpu.system,
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      external: mem.external,
      fds: openFds(),
      maxLoopDelayMs,
      running: stats.running,
      peakRunning,
      queued: stats.queued,
      accepted: stats.accepted,
      duplicates: stats.duplicates,
      helloConnections: hello.connections,
      hellosReceived: hello.received,
      finished,
    });
    finished = [];
    peakRunning = stats.running;
  };
  const sampler = setInterval(sample, 250);
  send({
    type: 'ready',
    helloPort: server.helloAddress.port,
    pid: process.pid,
    psks: devicePsks.map((p) => ({ pid: p.pid, pps: p.pps.reveal() })),
    fdLimit: fdLimit(),
  });

  await new Promise<void>((resolve) => {
    process.on('message', (msg: ToServer) => {
      if (msg.type === 'stop') resolve();
    });
    process.on('disconnect', () => resolve());
  });
  sample();
  clearInterval(sampler);
  clearInterval(watch);
  const runner = server.runner.stats();
  const hello = server.listener.counters();
  await server.stop({ graceMs: 0 });
  rmSync(dir, { recursive: true, force: true });
  send({ type: 'stopped', runner, hello, peakRss: peakRssKb() * 1024 });
  if (process.connected) process.disconnect();
}

process.once('message', (msg: ToServer) => {
  if (msg.type !== 'start') return;
  run(msg).catch((e: unknown) => {
    send({ type: 'failed', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    process.exitCode = 1;
    if (process.connected) process.disconnect();
  });
});
