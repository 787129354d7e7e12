/**
 * The memory floor of one in-flight session (issue 7 item 1, "memory per in-flight session ≤
 * 50 KB"): how much a client process grows per open TLS-PSK connection made with the server's
 * own connectPsk (src/amt/tls-psk.ts) after one HTTP round trip, against plain TCP connections
 * doing the same round trip, side by side in the same run. The server side runs in a child
 * process (bench/scale-session-peer.ts) so its memory is not counted.
 *
 *   node --expose-gc --import tsx bench/scale-session-memory.ts [--sessions 1000]
 *
 * Prints a readable summary and writes bench/out/session-memory-<stamp>.json.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { loadavg } from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { connectPsk } from '../src/amt/tls-psk.ts';
import type { Pid } from '../src/psk/pid.ts';
import type { Pps } from '../src/psk/pps.ts';
import { Secret } from '../src/secret.ts';
import type { PeerReady } from './scale-session-peer.ts';

const i = process.argv.indexOf('--sessions');
const SESSIONS = i > 0 ? Number(process.argv[i + 1]) : 1000;
const PID = 'ABCDEFGH' as Pid;
const PPS = new Secret('ABCDEFGHIJKLMNOPQRSTUVWXYZ012345' as Pps);
const REQUEST = 'POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello';

const gc = (globalThis as { gc?: () => void }).gc;
function settle(): { rss: number; heap: number } {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed + m.external + m.arrayBuffers };
}

/** One request/response on an open duplex: the session has done real I/O, as a job's would. */
function roundTrip(s: Duplex): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('data', () => resolve());
    s.once('error', reject);
    s.write(REQUEST);
  });
}

async function openAll(open: () => Promise<Duplex>): Promise<{ perSessionKb: number; heapPerSessionKb: number }> {
  const before = settle();
  const held: Duplex[] = [];
  for (let k = 0; k < SESSIONS; k += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, SESSIONS - k) }, () => open()));
    await Promise.all(batch.map(roundTrip));
    held.push(...batch);
  }
  const after = settle();
  for (const s of held) s.destroy();
  await new Promise((r) => setTimeout(r, 200));
  return {
    perSessionKb: Math.round((after.rss - before.rss) / SESSIONS / 102.4) / 10,
    heapPerSessionKb: Math.round((after.heap - before.heap) / SESSIONS / 102.4) / 10,
  };
}

const peer = fork(fileURLToPath(new URL('./scale-session-peer.ts', import.meta.url)), [], {
  execArgv: ['--import', import.meta.resolve('tsx'), '--no-warnings=ExperimentalWarning'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
const [ready] = (await once(peer, 'message')) as [PeerReady];
const load0 = loadavg();
// Warm both paths (code, OpenSSL tables) before measuring.
await openAll(async () => {
  const s = net.connect({ host: '127.0.0.1', port: ready.tcpPort });
  await once(s, 'connect');
  return s;
}).catch(() => undefined);
const results: Record<string, { perSessionKb: number; heapPerSessionKb: number }[]> = { tlsPsk: [], tcp: [] };
for (let r = 0; r < 2; r++) {
  results.tcp?.push(
    await openAll(async () => {
      const s = net.connect({ host: '127.0.0.1', port: ready.tcpPort });
      await once(s, 'connect');
      return s;
    }),
  );
  results.tlsPsk?.push(
    await openAll(() => connectPsk({ host: '127.0.0.1', port: ready.tlsPort, pid: PID, pps: PPS, timeoutMs: 60_000 })),
  );
}
peer.disconnect();
const result = {
  bench: 'session-memory',
  node: process.version,
  sessions: SESSIONS,
  gcExposed: gc !== undefined,
  loadAverage: { atStart: load0, atEnd: loadavg() },
  rounds: results,
};
const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'out');
mkdirSync(out, { recursive: true });
const file = path.join(out, `session-memory-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
const show = (k: string): string =>
  (results[k] ?? []).map((x) => `${x.perSessionKb} KB RSS (${x.heapPerSessionKb} KB heap+external)`).join(', ');
process.stdout.write(
  [
    `memory per open session after one HTTP round trip, ${SESSIONS} sessions, node ${process.version}, gc ${gc === undefined ? 'NOT exposed (run with --expose-gc)' : 'forced before each reading'}`,
    `  TLS-PSK (connectPsk)  ${show('tlsPsk')}`,
    `  plain TCP (baseline)  ${show('tcp')}`,
    `written: ${file}`,
    '',
  ].join('\n'),
);
