/**
 * Provisioning benchmark (issue 4, "Speed"): N simulated devices (worker processes, so their
 * CPU is not counted) provisioned by the real server in this process, then a FLOOR run side by
 * side: per device the same handshakes and HTTP round trips as the server made, with canned
 * bodies, no logic, no store. The setup session's handshakes are TLS-PSK to the simulated
 * devices (canned WS-Man Identify); with the profile's TLS on, the two verification
 * connections are certificate TLS, as the server's are, to bench/floor-tls-server.ts (a child
 * process serving an RSA-2048 device certificate from an SCS-profile CA, since an unprovisioned
 * simulated device has none). Prints one JSON object.
 *
 *   node --import tsx bench/provision.ts [--devices 1000] [--max-jobs 256] [--per-worker 500] [--log-level warn]
 *     [--profile server.cpuprofile] [--profile-floor floor.cpuprofile]
 *   node --import tsx bench/provision.ts --db postgres://postgres@127.0.0.1/postgres [--nodes 2] [--devices 300]
 *     (servers as child processes: SQLite 1 node, PostgreSQL 1 node and K nodes side by side; bench/provision-nodes.ts)
 *
 * Wall time (devices/s) runs from the first hello taken to the last device done. CPU is
 * process.cpuUsage() of this process from the moment the hello port opens (the fleet is
 * already up and retrying its first hello) until the last job ends; the fleet's parent side
 * (IPC from its workers) runs here too and is counted on both sides. Peak RSS is sampled every
 * 100 ms during each phase; the server phase runs first.
 */
import { fork } from 'node:child_process';
import { createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
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
import { createSocketTransport } from '../src/amt/http/transport.ts';
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
import { runNodesBench } from './provision-nodes.ts';

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
/** Hellos 1.2 s apart at first (12 s x 0.1): a refused first hello comes back quickly. */
const TIME_FACTOR = 0.1;

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
  userMsPerDevice?: number;
  systemMsPerDevice?: number;
  peakRssMb: number;
}

/** The real server: store, CA, runner, hello listener, as src/main.ts composes them. */
async function serverPhase(): Promise<
  Phase & {
    helloToVerifiedMs: { p50: number; p99: number; max: number };
    failed: number;
    connectionsPerDevice: number;
    requestsPerDevice: number;
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
  const psks = pairs(N);
  await store.psks.insertMany(
    [
      ...psks.map((p) => ({ ...p, batch: 'bench', state: 'exported' as const })),
      ...pairs(N).map((p) => ({ ...p, batch: 'bench' })),
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
      if (times.length >= N) resolve();
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
  const stopProfile = await startProfile(arg('profile', ''));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await listener.listen();
  await done;
  await stopProfile();
  const wallMs = performance.now() - (firstHello ?? t0);
  const cpu = cpuMs(cpu0);
  const peakRssMb = rss.stop();
  const stats = runner.stats();
  await listener.close();
  await runner.stop({ graceMs: 0 });
  await fleet.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  times.sort((a, b) => a - b);
  return {
    wallMs: Math.round(wallMs),
    devicesPerSec: Math.round((N / wallMs) * 1000 * 10) / 10,
    cpuMsPerDevice: Math.round((cpu / N) * 100) / 100,
    peakRssMb,
    helloToVerifiedMs: {
      p50: Math.round(percentile(times, 50)),
      p99: Math.round(percentile(times, 99)),
      max: Math.round(times.at(-1) ?? 0),
    },
    failed,
    userMsPerDevice: Math.round(lastCpu.user / 10 / N) / 100,
    systemMsPerDevice: Math.round(lastCpu.system / 10 / N) / 100,
    connectionsPerDevice: Math.round((stats.connections / N) * 100) / 100,
    requestsPerDevice: Math.round(((stats.exchanges + stats.challenges) / N) * 100) / 100,
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

/** Starts bench/floor-tls-server.ts; resolves with its port and a stop function. */
async function floorTlsServer(keyPem: string, certPem: string): Promise<{ port: number; stop(): void }> {
  const child = fork(new URL('./floor-tls-server.ts', import.meta.url), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const ready = once(child, 'message') as Promise<[{ port: number }]>;
  child.send({ keyPem, certPem, minVersion: 'TLSv1', maxVersion: 'TLSv1.2', replyBytes: 1500 });
  const [{ port }] = await ready;
  return { port, stop: () => child.disconnect() };
}

/**
 * The floor: per device, `connections` handshakes and `requests` HTTP round trips in total,
 * as the server made them: `verifyConnections` of the connections are certificate TLS with one
 * round trip each (the verification's Digest 401 and its Get), the others TLS-PSK to the
 * simulated device carrying the remaining round trips with a canned Identify body. Hellos
 * decoded and deduped; the same concurrency cap. No store, no WS-Man logic, no Digest, no CA
 * work per device.
 */
async function floorPhase(connections: number, requests: number, verifyConnections: number): Promise<Phase> {
  const tlsPort = 20_000 + randomInt(40_000);
  const helloPort = await freePort();
  const psks = pairs(N);
  const ppsOf = new Map<string, Secret<Pps>>(psks.map((p) => [p.pid, p.pps]));
  const dnsName = 'amt-floor.lab.example';
  const pki = verifyConnections > 0 ? await deviceCertificate(dnsName) : undefined;
  const standIn = pki === undefined ? undefined : await floorTlsServer(pki.keyPem, pki.certPem);
  // The server's context for certificate TLS: built once, from config defaults (as the runner's).
  const defaults = loadConfig({ flags: {}, env: {} });
  const tlsContext =
    pki === undefined
      ? undefined
      : tlsSecureContext({ ca: pki.caPem, minVersion: defaults.tlsMinVersion, maxVersion: defaults.tlsMaxVersion });
  const fleet = await fleetOf(psks, helloPort, tlsPort);
  const body = Buffer.from(buildEnvelope({ kind: 'identify' }, 'uuid:00000000-0000-4000-8000-000000000000'), 'utf8');
  const seen = new Set<string>();
  let firstHello: number | undefined;
  const queue: { address: string; pid: Pid }[] = [];
  let running = 0;
  let finished = 0;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => (resolveDone = r));
  const conns = Math.max(1, Math.round(connections));
  const reqs = Math.max(conns, Math.round(requests));
  const certConns = standIn === undefined ? 0 : Math.min(conns - 1, Math.round(verifyConnections));
  const pskConns = conns - certConns;
  const pskReqs = reqs - certConns;
  async function device(address: string, pid: Pid): Promise<void> {
    const pps = ppsOf.get(pid) as Secret<Pps>;
    for (let c = 0; c < pskConns; c++) {
      const transport = createSocketTransport({
        host: `${address}:${tlsPort}`,
        connect: (signal): Promise<Duplex> =>
          connectPsk({ host: address, port: tlsPort, pid, pps, timeoutMs: 15_000, signal }),
      });
      const share = Math.floor(pskReqs / pskConns) + (c < pskReqs % pskConns ? 1 : 0);
      for (let r = 0; r < share; r++) {
        await transport.request({
          method: 'POST',
          path: '/wsman',
          headers: { 'Content-Type': 'application/soap+xml;charset=UTF-8' },
          body,
        });
      }
      transport.close();
    }
    for (let c = 0; c < certConns && standIn !== undefined && pki !== undefined; c++) {
      const transport = createTlsTransport({
        host: '127.0.0.1',
        port: standIn.port,
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
        headers: { 'Content-Type': 'application/soap+xml;charset=UTF-8' },
        body,
      });
      transport.close();
    }
  }
  function pump(): void {
    while (running < MAX_JOBS && queue.length > 0) {
      const next = queue.shift() as { address: string; pid: Pid };
      running++;
      void device(next.address, next.pid)
        .catch((e: unknown) => process.stderr.write(`floor: ${String(e)}\n`))
        .finally(() => {
          running--;
          if (++finished >= N) resolveDone();
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
  const stopProfile = await startProfile(arg('profile-floor', ''));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  server.listen(helloPort, '127.0.0.1');
  await once(server, 'listening');
  await done;
  await stopProfile();
  const wallMs = performance.now() - (firstHello ?? t0);
  const cpu = cpuMs(cpu0);
  const peakRssMb = rss.stop();
  server.close();
  await fleet.stop();
  standIn?.stop();
  return {
    wallMs: Math.round(wallMs),
    devicesPerSec: Math.round((N / wallMs) * 1000 * 10) / 10,
    cpuMsPerDevice: Math.round((cpu / N) * 100) / 100,
    peakRssMb,
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
const server = await serverPhase();
if (process.argv.includes('--no-floor')) {
  process.stdout.write(`${JSON.stringify({ benchmark: 'provision', devices: N, server }, null, 2)}\n`);
  process.exit(0);
}
// With TLS on, the server verifies over certificate TLS: a connection for the Digest 401 and
// one for the Get (more only when a device was slow to come back after CommitChanges).
const floor = await floorPhase(server.connectionsPerDevice, server.requestsPerDevice, TLS ? 2 : 0);
const ratio = Math.round((server.cpuMsPerDevice / floor.cpuMsPerDevice) * 100) / 100;
process.stdout.write(
  `${JSON.stringify(
    {
      benchmark: 'provision',
      devices: N,
      maxJobs: MAX_JOBS,
      fleetWorkers: Math.ceil(N / PER_WORKER),
      logLevel: LOG_LEVEL,
      node: process.version,
      server,
      floor,
      ratio: { cpuPerDevice: ratio, wall: Math.round((server.wallMs / floor.wallMs) * 100) / 100 },
      targets: {
        ratioAtMost2: ratio <= 2,
        noFailure: server.failed === 0,
        serverRssUnder500Mb: server.peakRssMb < 500,
      },
    },
    null,
    2,
  )}\n`,
);
