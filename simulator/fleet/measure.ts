import { readFileSync } from 'node:fs';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import { Secret } from '../../src/secret.ts';
import { startStandInScs } from '../../test/peers/stand-in-scs.ts';
import { startFleet } from './fleet.ts';

/**
 * Measures a fleet on this machine and prints one JSON line: start time, resident memory of
 * every process, and (unless --no-provision) the time until a stand-in SCS has configured every
 * device over TLS-PSK. Usage:
 *   node --import tsx simulator/fleet/measure.ts [devices=10000] [timeFactor=0.01] [--no-provision]
 * Devices listen on the real ports 16993/16992 from 127.10.0.1 up.
 */
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const provision = !process.argv.includes('--no-provision');
const devices = Number(args[0] ?? 10_000);
const timeFactor = Number(args[1] ?? 0.01);

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

const psks = Array.from({ length: devices }, () => ({ pid: generatePid(), pps: new Secret(generatePps()) }));
const scs = await startStandInScs({
  psks: new Map(provision ? psks.map((p) => [p.pid, p.pps.reveal()]) : []),
  tlsPortOf: () => 16993,
  password: 'P@ssw0rd',
  maxConcurrent: 128,
});
const t0 = performance.now();
const fleet = await startFleet({ devices, psks, scs: `127.0.0.1:${scs.port}`, timeFactor, seed: 'measure' });
const startMs = Math.round(performance.now() - t0);
await new Promise((r) => setTimeout(r, 2000));
const memory = { parentMb: rssMb(process.pid), workersMb: fleet.workerPids.map(rssMb) };
const totalMb = memory.parentMb + memory.workersMb.reduce((a, b) => a + b, 0);
let provisionMs: number | null = null;
if (provision) {
  await fleet.waitFor('all-provisioned', { timeoutMs: 30 * 60_000 });
  provisionMs = Math.round(performance.now() - t0);
}
const peak = { parentMb: rssMb(process.pid), workersMb: fleet.workerPids.map(rssMb) };
const counts = fleet.counts();
await fleet.stop();
await scs.close();
console.log(
  JSON.stringify({
    devices,
    timeFactor,
    workers: memory.workersMb.length,
    startMs,
    memory,
    totalMb,
    provisionMs,
    afterProvision: peak,
    counts,
    hellosAtScs: scs.hellos,
  }),
);
