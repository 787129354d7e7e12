/**
 * Generates N PSKs (default 1,000,000) into a fresh SQLite database in a temp directory, as
 * `amt-scs psk generate` does (CSPRNG, AES-256-GCM per PPS, chunked transactions, audit), and
 * prints one JSON line: {count, seconds, pairsPerSecond, peakRssMB, dbBytes, ...}; a readable
 * line goes to stderr. Usage: node --import tsx bench/psk-generate.ts [count] [--keep]
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { generatePsks } from '../src/psk/service.ts';
import { openStore } from '../src/store/open.ts';

const args = process.argv.slice(2);
const count = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const keep = args.includes('--keep');
const dir = mkdtempSync(path.join(tmpdir(), 'scs-bench-'));
const dbFile = path.join(dir, 'scs.db');

function fileBytes(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds of this process's main thread (Linux /proc; null elsewhere). On a busy machine
 * wall time says little; the main thread's CPU is the floor of the wall time on an idle one,
 * since the database work is single-threaded and the sealing runs on a second core.
 */
function mainThreadCpuSeconds(): number | null {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14, 15)
    return Number.isFinite(ticks) ? ticks / 100 : null; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

try {
  const { store } = await openStore({ db: `sqlite:${dbFile}`, masterKeyFile: path.join(dir, 'master.key') });
  const load = loadavg()[0] ?? 0;
  const cpuStart = process.cpuUsage();
  const mainStart = mainThreadCpuSeconds();
  const started = performance.now();
  const result = await generatePsks(store, { count, batch: 'bench', actor: 'bench' });
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const mainEnd = mainThreadCpuSeconds();
  const closeStarted = performance.now();
  await store.close();
  const closeSeconds = (performance.now() - closeStarted) / 1000;
  const out = {
    count: result.generated,
    seconds: Number(seconds.toFixed(3)),
    pairsPerSecond: Math.round(result.generated / seconds),
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    dbBytes: fileBytes(dbFile) + fileBytes(`${dbFile}-wal`),
    collisions: result.collisions,
    cpuSeconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
    mainThreadCpuSeconds: mainStart === null || mainEnd === null ? null : Number((mainEnd - mainStart).toFixed(2)),
    closeSeconds: Number(closeSeconds.toFixed(3)),
    loadAverageAtStart: Number(load.toFixed(2)),
  };
  process.stderr.write(
    `generated ${out.count} PSKs in ${out.seconds} s (${out.pairsPerSecond}/s), peak RSS ${out.peakRssMB} MB, ` +
      `database ${(out.dbBytes / 1e6).toFixed(1)} MB, ${out.collisions} PID collisions re-drawn; ` +
      `CPU ${out.cpuSeconds} s (main thread ${out.mainThreadCpuSeconds ?? '?'} s), load average ${out.loadAverageAtStart}\n`,
  );
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  if (keep) process.stderr.write(`kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}
