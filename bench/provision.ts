/**
 * Provisioning benchmark (issue 4, "Speed"): N simulated devices (worker processes, so their
 * CPU is not counted) provisioned by the real server in this process, then a FLOOR run side by
 * side: per device the same handshakes, HTTP round trips and HTTP bytes as the server made,
 * with canned bodies, no logic, no store. Its device side is two stand-in processes
 * (bench/floor-tls-server.ts) that answer TLS-PSK, and certificate TLS for the verification's two
 * connections, with a canned reply of the server's mean reply size; requests are a canned
 * Identify padded to the server's mean request size. The simulated devices still send the
 * hellos. A second floor, the one used until 2026-11-29 (a canned ~360-byte Identify to the
 * simulated devices), runs after it for comparison with earlier figures
 * (`--no-identify-floor` skips it). Prints one JSON object.
 *
 *   node --import tsx bench/provision.ts [--devices 1000] [--rounds 1] [--warmup 300] [--max-jobs 256] [--per-worker 500]
 *     [--log-level warn] [--tls on|off] [--time-factor 1] [--no-identify-floor]
 *     [--profile server.cpuprofile] [--profile-floor floor.cpuprofile]
 *   node --import tsx bench/provision.ts --db postgres://postgres@127.0.0.1/postgres [--nodes 2] [--devices 300]
 *     (servers as child processes: SQLite 1 node, PostgreSQL 1 node and K nodes side by side; bench/provision-nodes.ts)
 *
 * `--rounds R` runs R rounds of (server, floor, earlier floor) back to back and reports the
 * round with the median ratio in full, every round's figures under `rounds`.
 *
 * Wall time (devices/s) runs from the first hello taken to the last device done. CPU is
 * process.cpuUsage() of this process from the moment the hello port opens (the fleet is
 * already up and retrying its first hello) until the last job ends; the fleet's parent side
 * (IPC from its workers) runs here too and is counted on both sides. Peak RSS is sampled every
 * 100 ms during each phase; the server phase runs first.
 */
import { fork, spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomInt } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { nullSignedCsr } from '../simulator/device/test-pki.ts';
import { startFleet, type Fleet } from '../simulator/fleet/fleet.ts';
import { createTlsTransport } from '../src/amt/connect.ts';
import { connectPsk, tlsSecureContext } from '../src/amt/tls-psk.ts';
import { createSocketTransport, type HttpTransport } from '../src/amt/http/transport.ts';
import { buildEnvelope } from '../src/amt/wsman/envelope.ts';
import { loadConfig, type LogLevel } from '../src/config.ts';
import { decodeHello } from '../src/hello/decode.ts';
import { createHelloListener } from '../src/hello/listener.ts';
import { createCaMaterial } from '../src/crypto/ca.ts';
import { createLogger } from '../src/log.ts';
import { ensureCa } from '../src/main.ts';
import { createMetrics } from '../src/metrics.ts';
import type { PskPair } from '../src/psk/formats/pair.ts';
import { generatePid, generatePps } from '../src/psk/generate.ts';
import type { Pid } from '../src/psk/pid.ts';
import type { Pps } from '../src/psk/pps.ts';
import { createDeviceCertificateIssuer } from '../src/provisioning/device-certificate.ts';
import { createRunner } from '../src/provisioning/runner.ts';
import { Secret } from '../src/secret.ts';
import { openStore } from '../src/store/open.ts';
import type { FloorTlsServerConfig, FloorTlsServerPorts } from './floor-tls-server.ts';
import { runNodesBench } from './provision-nodes.ts';

/**
 * The server runs with npm start's V8 flags (its young-generation size, docs/performance.md
 * "GC"), so the bench's server must too: without a --max-semi-space-size of its own, the bench
 * runs itself again with the one in package.json's start script. Give one to compare sizes.
 */
const SEMI_SPACE = /--max-semi-space-size=\d+/.exec(
  (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } })
    .scripts.start,
)?.[0];
if (SEMI_SPACE !== undefined && !process.execArgv.some((a) => a.startsWith('--max-semi-space-size'))) {
  const again = spawnSync(process.execPath, [SEMI_SPACE, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  process.exit(again.status ?? 1);
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const N = Number(arg('devices', '1000'));
const MAX_JOBS = Number(arg('max-jobs', '256'));
const PER_WORKER = Number(arg('per-worker', '500'));
const LOG_LEVEL = arg('log-level', 'warn') as LogLevel;
const TLS = arg('tls', 'on') === 'on';
const MEBX = 'P@ssw0rd';
/**
 * The devices' hello schedule (protocol.md §1d: 12 s apart at first) scaled by this. 1, as
 * devices send them: a device waiting in the queue says hello again every 12 s, and each
 * hello is a connection the server takes and drops as a duplicate. At 0.1 (before 2026-11-29)
 * a waiting device said hello ten times as often as a real one (5.2 hello connections per
 * device instead of 1.2 at 1,000 devices).
 */
const TIME_FACTOR = Number(arg('time-factor', '1'));

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function pairs(n: number): PskPair[] {
  return Array.from({ length: n }, () => ({ pid: generatePid(), pps: new Secret(generatePps()) }));
}

/**
 * Samples RSS every 100 ms; `stop()` returns the peak in MB. process.memoryUsage.rss() reads
 * one number; process.memoryUsage() also walks the V8 heap spaces, which showed as 2% of the
 * measured CPU in a profile of both phases.
 */
function rssSampler(): { stop(): number } {
  let peak = process.memoryUsage.rss();
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 100);
  return {
    stop() {
      clearInterval(t);
      return Math.round(Math.max(peak, process.memoryUsage.rss()) / 1048576);
    },
  };
}

/** Sums the main thread's GC pauses (PerformanceObserver 'gc' entries); `stop()` returns ms. */
function gcMeter(): { stop(): number } {
  let ms = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) ms += entry.duration;
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    stop() {
      observer.disconnect();
      return ms;
    },
  };
}

/** A CPU profile of one measured window (`--profile FILE` / `--profile-floor FILE`), written as .cpuprofile JSON. */
async function startProfile(file: string): Promise<() => Promise<void>> {
  if (file === '') return () => Promise.resolve();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

let lastCpu: NodeJS.CpuUsage = { user: 0, system: 0 };
function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  lastCpu = d;
  return (d.user + d.system) / 1000;
}

async function fleetOf(psks: readonly PskPair[], helloPort: number, tlsPort: number): Promise<Fleet> {
  return startFleet({
    devices: psks.length,
    psks,
    scs: `127.0.0.1:${helloPort}`,
    tlsPort,
    httpPort: tlsPort + 1,
    addressBase: `127.${100 + randomInt(150)}.${randomInt(200)}.1`,
    workers: 'processes',
    maxDevicesPerWorker: PER_WORKER,
    keyPoolSize: 16,
    mebxPassword: MEBX,
    timeFactor: TIME_FACTOR,
  });
}

interface Phase {
  wallMs: number;
  devicesPerSec: number;
  cpuMsPerDevice: number;
  /** Main-thread GC pauses per device (part of the CPU above). */
  gcMsPerDevice: number;
  userMsPerDevice?: number;
  systemMsPerDevice?: number;
  peakRssMb: number;
}

/** The real server: store, CA, runner, hello listener, as src/main.ts composes them. */
async function serverPhase(n = N): Promise<
  Phase & {
    helloToVerifiedMs: { p50: number; p99: number; max: number };
    failed: number;
    connectionsPerDevice: number;
    requestsPerDevice: number;
    bytesPerDevice: { sent: number; received: number };
    hellosPerDevice: number;
  }
> {
  const dir = mkdtempSync(path.join(tmpdir(), 'scs-bench-'));
  const tlsPort = 20_000 + randomInt(40_000);
  const helloPort = await freePort();
  const config = loadConfig({
    flags: {
      dataDir: dir,
      helloHost: '127.0.0.1',
      helloPort,
      amtTlsPort: tlsPort,
      maxJobs: MAX_JOBS,
      logLevel: LOG_LEVEL,
    },
    env: {},
  });
  const log = createLogger(config.logLevel);
  const { store } = await openStore(config, log);
  const psks = pairs(n);
  await store.psks.insertMany(
    [
      ...psks.map((p) => ({ ...p, batch: 'bench', state: 'exported' as const })),
      ...pairs(n).map((p) => ({ ...p, batch: 'bench' })),
    ],
    { actor: 'bench', source: 'generate' },
  );
  await store.profiles.update(
    'default',
    {
      secrets: { currentMebxPassword: new Secret(MEBX) },
      settings: { tls: TLS ? 'on' : 'off', timeSync: arg('time-sync', 'on') },
    },
    { actor: 'bench' },
  );
  const { ca, issuer } = await ensureCa(store, 'bench');
  const runner = createRunner({ store, ca, issuer, config, log, metrics: createMetrics(), actor: 'bench' });
  const fleet = await fleetOf(psks, helloPort, tlsPort);
  const times: number[] = [];
  let failed = 0;
  const done = new Promise<void>((resolve) => {
    runner.on('finished', (f) => {
      if (f.state === 'succeeded') times.push(f.ms);
      else failed++;
      if (times.length >= n) resolve();
    });
  });
  let firstHello: number | undefined;
  const listener = createHelloListener({
    host: '127.0.0.1',
    port: helloPort,
    maxConnections: config.helloMaxConnections,
    timeoutMs: config.helloTimeoutMs,
    onHello: (hello, remote) => {
      firstHello ??= performance.now();
      if (hello.version !== 2) return undefined; // the bench's devices send version 2 hellos only
      return runner.accept(hello, remote).then(() => undefined);
    },
    log,
  });
  const rss = rssSampler();
  const gc = gcMeter();
  const stopProfile = await startProfile(arg('profile', ''));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await listener.listen();
  await done;
  await stopProfile();
  const wallMs = performance.now() - (firstHello ?? t0);
  const cpu = cpuMs(cpu0);
  const peakRssMb = rss.stop();
  const gcMs = gc.stop();
  const stats = runner.stats();
  const hellos = listener.counters().connections;
  await listener.close();
  await runner.stop({ graceMs: 0 });
  await fleet.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  times.sort((a, b) => a - b);
  return {
    wallMs: Math.round(wallMs),
    devicesPerSec: Math.round((n / wallMs) * 1000 * 10) / 10,
    cpuMsPerDevice: Math.round((cpu / n) * 100) / 100,
    gcMsPerDevice: Math.round((gcMs / n) * 100) / 100,
    peakRssMb,
    helloToVerifiedMs: {
      p50: Math.round(percentile(times, 50)),
      p99: Math.round(percentile(times, 99)),
      max: Math.round(times.at(-1) ?? 0),
    },
    failed,
    userMsPerDevice: Math.round(lastCpu.user / 10 / n) / 100,
    systemMsPerDevice: Math.round(lastCpu.system / 10 / n) / 100,
    connectionsPerDevice: Math.round((stats.connections / n) * 100) / 100,
    requestsPerDevice: Math.round(((stats.exchanges + stats.challenges) / n) * 100) / 100,
    bytesPerDevice: { sent: Math.round(stats.bytesSent / n), received: Math.round(stats.bytesReceived / n) },
    hellosPerDevice: Math.round((hellos / n) * 100) / 100,
  };
}

/**
 * What a provisioned device serves at verification: an RSA-2048 key (a simulated device's
 * GenerateKeyPair), in a certificate the server's own issuer signs with an SCS-profile CA.
 */
async function deviceCertificate(dnsName: string): Promise<{ caPem: string; keyPem: string; certPem: string }> {
  const material = await createCaMaterial('amt-scs floor CA');
  const rsa = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]) };
  const keys = await webcrypto.subtle.generateKey({ ...rsa, modulusLength: 2048 }, true, ['sign', 'verify']);
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey));
  const pkcs1 = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ type: 'pkcs1', format: 'der' });
  const csr = await nullSignedCsr(pkcs1.toString('base64'), keys.privateKey, `CN=${dnsName}`);
  const issued = await createDeviceCertificateIssuer(material).issueDeviceCertificate(Buffer.from(csr, 'base64'), {
    dnsName,
    uuid: '00000000-0000-4000-8000-000000000000',
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({
    type: 'pkcs8',
    format: 'pem',
  });
  return { caPem: material.certPem, keyPem: keyPem.toString(), certPem: issued.pem };
}

/** Starts a bench/floor-tls-server.ts child; resolves with its ports and a stop function. */
async function floorTlsServer(config: FloorTlsServerConfig): Promise<FloorTlsServerPorts & { stop(): void }> {
  const child = fork(new URL('./floor-tls-server.ts', import.meta.url), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const ready = once(child, 'message') as Promise<[FloorTlsServerPorts]>;
  child.send(config);
  const [ports] = await ready;
  return { ...ports, stop: () => child.disconnect() };
}

/** What the floor copies from the server run. */
interface FloorShape {
  readonly connections: number;
  readonly requests: number;
  /** Of the connections, those that are certificate TLS (the verification's). */
  readonly verifyConnections: number;
  /**
   * Mean HTTP bytes per round trip (head and body) the server wrote and read: the floor sends
   * and receives as many. Undefined: the earlier floor, a canned Identify (~360 bytes) to the
   * simulated devices and ~1.6 KB replies on certificate TLS.
   */
  readonly bytes?: { readonly request: number; readonly reply: number };
}

const SOAP = 'application/soap+xml;charset=UTF-8';
const IDENTIFY = buildEnvelope({ kind: 'identify' }, 'uuid:00000000-0000-4000-8000-000000000000');

/** A canned Identify padded with spaces so that the whole request, head included, is `bytes` long. */
function paddedRequestBody(host: string, bytes: number): Buffer {
  // The head the transport writes (transport.ts serialize), with a body length of 4 digits.
  const head = `POST /wsman HTTP/1.1\r\nHost: ${host}\r\nContent-Type: ${SOAP}\r\nContent-Length: 0000\r\n\r\n`;
  const pad = Math.max(0, bytes - head.length - IDENTIFY.length);
  return Buffer.from(IDENTIFY.replace('</s:Envelope>', `${' '.repeat(pad)}</s:Envelope>`), 'utf8');
}

/**
 * The floor: per device, `connections` handshakes and `requests` HTTP round trips in total,
 * as the server made them: `verifyConnections` of the connections are certificate TLS with one
 * round trip each (the verification's Digest 401 and its Get), the others TLS-PSK carrying the
 * remaining round trips. With `bytes`, each round trip writes and reads the server's mean bytes,
 * against two stand-in processes that answer with a canned reply of that size (the simulated
 * devices still send the hellos); without, a canned Identify to the simulated devices. Hellos
 * decoded and deduped; the same concurrency cap. No store, no WS-Man logic, no Digest, no CA
 * work per device.
 */
async function floorPhase(
  shape: FloorShape,
  n = N,
): Promise<Phase & { bytesPerDevice: { sent: number; received: number }; hellosPerDevice: number }> {
  const tlsPort = 20_000 + randomInt(40_000);
  const helloPort = await freePort();
  const psks = pairs(n);
  const ppsOf = new Map<string, Secret<Pps>>(psks.map((p) => [p.pid, p.pps]));
  const dnsName = 'amt-floor.lab.example';
  const pki = shape.verifyConnections > 0 ? await deviceCertificate(dnsName) : undefined;
  const standInConfig: FloorTlsServerConfig = {
    ...(pki === undefined ? {} : { keyPem: pki.keyPem, certPem: pki.certPem }),
    minVersion: 'TLSv1',
    maxVersion: 'TLSv1.2',
    replyBytes: shape.bytes?.reply ?? 1600,
    psks: shape.bytes === undefined ? [] : psks.map((p) => [p.pid, p.pps.reveal()] as const),
  };
  // As many stand-ins as the fleet has worker processes, so the device side is as parallel.
  const standIns = await Promise.all(
    Array.from({ length: shape.bytes === undefined ? 1 : Math.ceil(n / PER_WORKER) }, () =>
      floorTlsServer(standInConfig),
    ),
  );
  // The server's context for certificate TLS: built once, from config defaults (as the runner's).
  const defaults = loadConfig({ flags: {}, env: {} });
  const tlsContext =
    pki === undefined
      ? undefined
      : tlsSecureContext({ ca: pki.caPem, minVersion: defaults.tlsMinVersion, maxVersion: defaults.tlsMaxVersion });
  const fleet = await fleetOf(psks, helloPort, tlsPort);
  const bodyFor = (host: string): Buffer =>
    shape.bytes === undefined ? Buffer.from(IDENTIFY, 'utf8') : paddedRequestBody(host, shape.bytes.request);
  const seen = new Set<string>();
  let firstHello: number | undefined;
  const queue: { address: string; pid: Pid }[] = [];
  let running = 0;
  let finished = 0;
  let started = 0;
  let hellos = 0;
  let sent = 0;
  let received = 0;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => (resolveDone = r));
  const conns = Math.max(1, Math.round(shape.connections));
  const reqs = Math.max(conns, Math.round(shape.requests));
  const certConns = pki === undefined ? 0 : Math.min(conns - 1, Math.round(shape.verifyConnections));
  const pskConns = conns - certConns;
  const pskReqs = reqs - certConns;
  const count = (transport: HttpTransport): void => {
    sent += transport.bytesSent;
    received += transport.bytesReceived;
    transport.close();
  };
  async function device(address: string, pid: Pid, standIn: FloorTlsServerPorts): Promise<void> {
    const pps = ppsOf.get(pid) as Secret<Pps>;
    const [pskHost, pskPort] = shape.bytes === undefined ? [address, tlsPort] : ['127.0.0.1', standIn.pskPort];
    const body = bodyFor(`${pskHost}:${pskPort}`);
    for (let c = 0; c < pskConns; c++) {
      const transport = createSocketTransport({
        host: `${pskHost}:${pskPort}`,
        connect: (signal): Promise<Duplex> =>
          connectPsk({ host: pskHost, port: pskPort, pid, pps, timeoutMs: 15_000, signal }),
      });
      const share = Math.floor(pskReqs / pskConns) + (c < pskReqs % pskConns ? 1 : 0);
      for (let r = 0; r < share; r++) {
        await transport.request({ method: 'POST', path: '/wsman', headers: { 'Content-Type': SOAP }, body });
      }
      count(transport);
    }
    for (let c = 0; c < certConns && pki !== undefined; c++) {
      const transport = createTlsTransport({
        host: '127.0.0.1',
        port: standIn.certPort,
        ca: pki.caPem,
        ...(tlsContext === undefined ? {} : { secureContext: tlsContext }),
        servername: dnsName,
        minVersion: defaults.tlsMinVersion,
        maxVersion: defaults.tlsMaxVersion,
        connectTimeoutMs: 15_000,
      });
      await transport.request({
        method: 'POST',
        path: '/wsman',
        headers: { 'Content-Type': SOAP },
        body: bodyFor(`127.0.0.1:${standIn.certPort}`),
      });
      count(transport);
    }
  }
  function pump(): void {
    while (running < MAX_JOBS && queue.length > 0) {
      const next = queue.shift() as { address: string; pid: Pid };
      running++;
      const standIn = standIns[started++ % standIns.length] as FloorTlsServerPorts;
      void device(next.address, next.pid, standIn)
        .catch((e: unknown) => process.stderr.write(`floor: ${String(e)}\n`))
        .finally(() => {
          running--;
          if (++finished >= n) resolveDone();
          pump();
        });
    }
  }
  const server = net.createServer((socket) => {
    const remote = socket.remoteAddress ?? '';
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('end', () => {
      socket.destroy();
      try {
        const hello = decodeHello(Buffer.concat(chunks));
        hellos++;
        if (hello.version !== 2 || seen.has(hello.uuid)) return;
        seen.add(hello.uuid);
        firstHello ??= performance.now();
        queue.push({ address: remote.startsWith('::ffff:') ? remote.slice(7) : remote, pid: hello.pid });
        pump();
      } catch {
        // malformed: dropped
      }
    });
  });
  const rss = rssSampler();
  const gc = gcMeter();
  const stopProfile = await startProfile(shape.bytes === undefined ? '' : arg('profile-floor', ''));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  server.listen(helloPort, '127.0.0.1');
  await once(server, 'listening');
  await done;
  await stopProfile();
  const wallMs = performance.now() - (firstHello ?? t0);
  const cpu = cpuMs(cpu0);
  const peakRssMb = rss.stop();
  const gcMs = gc.stop();
  server.close();
  await fleet.stop();
  for (const s of standIns) s.stop();
  return {
    wallMs: Math.round(wallMs),
    devicesPerSec: Math.round((n / wallMs) * 1000 * 10) / 10,
    cpuMsPerDevice: Math.round((cpu / n) * 100) / 100,
    gcMsPerDevice: Math.round((gcMs / n) * 100) / 100,
    peakRssMb,
    bytesPerDevice: { sent: Math.round(sent / n), received: Math.round(received / n) },
    hellosPerDevice: Math.round((hellos / n) * 100) / 100,
  };
}

if (process.argv.includes('--db') || process.argv.includes('--nodes')) {
  const db = arg('db', '');
  await runNodesBench({
    pgUrl: db.startsWith('postgres') ? db : undefined,
    nodes: Number(arg('nodes', '1')),
    devices: N,
    maxJobs: MAX_JOBS,
    perWorker: PER_WORKER,
    logLevel: LOG_LEVEL,
    tls: TLS,
  });
  process.exit(0);
}
const ROUNDS = Math.max(1, Number(arg('rounds', '1')));
if (process.argv.includes('--no-floor')) {
  const server = await serverPhase();
  process.stdout.write(`${JSON.stringify({ benchmark: 'provision', devices: N, server }, null, 2)}\n`);
  process.exit(0);
}

/** One round: the server, then its floor and (unless --no-identify-floor) the earlier floor, back to back. */
async function round(): Promise<{
  server: Awaited<ReturnType<typeof serverPhase>>;
  floor: Awaited<ReturnType<typeof floorPhase>>;
  floorIdentify: Awaited<ReturnType<typeof floorPhase>> | undefined;
  ratio: { cpuPerDevice: number; wall: number; cpuPerDeviceToIdentifyFloor?: number };
}> {
  const server = await serverPhase();
  // With TLS on, the server verifies over certificate TLS: a connection for the Digest 401 and
  // one for the Get (more only when a device was slow to come back after CommitChanges).
  const shape = {
    connections: server.connectionsPerDevice,
    requests: server.requestsPerDevice,
    verifyConnections: TLS ? 2 : 0,
  };
  const perRoundTrip = (bytes: number): number => Math.round(bytes / server.requestsPerDevice);
  const floor = await floorPhase({
    ...shape,
    bytes: {
      request: perRoundTrip(server.bytesPerDevice.sent),
      reply: perRoundTrip(server.bytesPerDevice.received),
    },
  });
  // The floor before 2026-11-29 (canned Identify bodies), for comparison with earlier figures.
  const floorIdentify = process.argv.includes('--no-identify-floor') ? undefined : await floorPhase(shape);
  const ratioTo = (f: Phase): number => Math.round((server.cpuMsPerDevice / f.cpuMsPerDevice) * 100) / 100;
  return {
    server,
    floor,
    floorIdentify,
    ratio: {
      cpuPerDevice: ratioTo(floor),
      wall: Math.round((server.wallMs / floor.wallMs) * 100) / 100,
      ...(floorIdentify === undefined ? {} : { cpuPerDeviceToIdentifyFloor: ratioTo(floorIdentify) }),
    },
  };
}

/**
 * Unmeasured first: a server phase and a floor phase of `--warmup` devices (default 300), so V8
 * has compiled the code before any measured window, as in a server that has been running. Without
 * it the first server window pays the JIT (on its background threads too, counted as this
 * process's CPU) for the transport, TLS and HTTP code that the floor then runs already compiled.
 */
const WARMUP = Number(arg('warmup', '300'));
if (WARMUP > 0) {
  const warm = await serverPhase(WARMUP);
  await floorPhase(
    {
      connections: warm.connectionsPerDevice,
      requests: warm.requestsPerDevice,
      verifyConnections: TLS ? 2 : 0,
      bytes: {
        request: Math.round(warm.bytesPerDevice.sent / warm.requestsPerDevice),
        reply: Math.round(warm.bytesPerDevice.received / warm.requestsPerDevice),
      },
    },
    WARMUP,
  );
}

const rounds: Awaited<ReturnType<typeof round>>[] = [];
for (let r = 0; r < ROUNDS; r++) {
  rounds.push(await round());
  process.stderr.write(`round ${r + 1}/${ROUNDS}: ratio ${rounds.at(-1)?.ratio.cpuPerDevice}\n`);
}
// Reported in full: the round with the median ratio (the lower middle one for an even count).
const median = [...rounds].sort((a, b) => a.ratio.cpuPerDevice - b.ratio.cpuPerDevice)[
  (ROUNDS - 1) >> 1
] as (typeof rounds)[number];
const { server, floor, floorIdentify, ratio } = median;
process.stdout.write(
  `${JSON.stringify(
    {
      benchmark: 'provision',
      devices: N,
      warmupDevices: WARMUP,
      maxJobs: MAX_JOBS,
      fleetWorkers: Math.ceil(N / PER_WORKER),
      logLevel: LOG_LEVEL,
      node: process.version,
      nodeFlags: process.execArgv.filter((a) => a.startsWith('--max-semi-space-size')),
      server,
      floor,
      ...(floorIdentify === undefined ? {} : { floorIdentify }),
      ratio,
      ...(ROUNDS > 1
        ? {
            rounds: rounds.map((r) => ({
              serverCpuMsPerDevice: r.server.cpuMsPerDevice,
              floorCpuMsPerDevice: r.floor.cpuMsPerDevice,
              ...(r.floorIdentify === undefined ? {} : { floorIdentifyCpuMsPerDevice: r.floorIdentify.cpuMsPerDevice }),
              ratio: r.ratio,
              failed: r.server.failed,
            })),
          }
        : {}),
      targets: {
        ratioAtMost2: ratio.cpuPerDevice <= 2,
        noFailure: rounds.every((r) => r.server.failed === 0),
        serverRssUnder500Mb: rounds.every((r) => r.server.peakRssMb < 500),
      },
    },
    null,
    2,
  )}\n`,
);
