/**
 * PSK export/import through the database (src/psk/transfer): a 1,000,000-pair bundle exported
 * from one SQLite database (as a copy, then as a move) and imported into a fresh second one
 * (targets < 10 s and peak RSS < 300 MB each), and a setup.bin of 20,000 records exported
 * (target < 1 s). The databases are seeded first (not measured); each measured phase runs in
 * its own process so its peak RSS is its own. JSON on stdout, readable lines on stderr.
 *
 *   node --import tsx bench/transfer.ts [pairs]
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SCRYPT_PARAMS } from '../src/psk/formats/bundle.ts';
import { generatePsks } from '../src/psk/service.ts';
import { exportPsksToFile } from '../src/psk/transfer/export.ts';
import { importPsks } from '../src/psk/transfer/import.ts';
import { Secret } from '../src/secret.ts';
import { openStore } from '../src/store/open.ts';
import type { Store } from '../src/store/store.ts';

const SETUPBIN_RECORDS = 20_000;
const PASSPHRASE = new Secret('bench passphrase: not a secret');
const actor = 'bench';

type Result = Record<string, number | string | null>;

/** CPU seconds of the main thread (Linux /proc; null elsewhere): the floor of the wall time on an idle machine. */
function mainThreadCpuMs(): number | null {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
    return Number.isFinite(ticks) ? ticks * 10 : null; // USER_HZ = 100
  } catch {
    return null;
  }
}

/** CPU ms (utime + stime) of every thread of this process by thread id, with its name (Linux /proc). */
function threadCpuMs(): Map<string, { name: string; ms: number }> {
  const out = new Map<string, { name: string; ms: number }>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out.set(tid, { name, ms: (Number(fields[11]) + Number(fields[12])) * 10 });
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    // not Linux
  }
  return out;
}

/**
 * Wall time, CPU of every thread, and main-thread CPU of `fn`; the machine may be shared. Also
 * the busiest threads' CPU during `fn` (name:ms): on a shared machine wall time says little, and
 * the busiest thread (or all CPU over the cores) is what bounds the wall time on an idle one.
 */
async function timed<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; ms: number; cpuMs: number; mainCpuMs: number; busiestThreadsMs: string }> {
  const c0 = process.cpuUsage();
  const m0 = mainThreadCpuMs() ?? 0;
  const th0 = threadCpuMs();
  const t0 = performance.now();
  const value = await fn();
  const ms = Math.round(performance.now() - t0);
  const c = process.cpuUsage(c0);
  const busiest = [...threadCpuMs()]
    .map(([tid, t]) => ({ name: t.name, ms: t.ms - (th0.get(tid)?.ms ?? 0) }))
    .filter((t) => t.ms >= 50)
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 6);
  return {
    value,
    ms,
    cpuMs: Math.round((c.user + c.system) / 1000),
    mainCpuMs: (mainThreadCpuMs() ?? 0) - m0,
    busiestThreadsMs: busiest.map((t) => `${t.name}:${t.ms}`).join(' '),
  };
}

function peakRssMb(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024); // maxRSS is in KiB
}

async function withStore<T>(dir: string, name: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const { store } = await openStore({
    db: `sqlite:${path.join(dir, `${name}.db`)}`,
    masterKeyFile: path.join(dir, 'master.key'),
  });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function seed(dir: string, pairs: number): Promise<Result> {
  const t0 = performance.now();
  await withStore(dir, 'a', (s) => generatePsks(s, { count: pairs, batch: 'bulk', actor }));
  await withStore(dir, 'c', (s) => generatePsks(s, { count: SETUPBIN_RECORDS, batch: 'usb', actor }));
  return { pairs, setupBinPairs: SETUPBIN_RECORDS, ms: Math.round(performance.now() - t0) };
}

async function bundleExport(dir: string, move: boolean): Promise<Result> {
  return withStore(dir, 'a', async (store) => {
    const { value: s, ...t } = await timed(() =>
      exportPsksToFile(
        store,
        { format: 'bundle', actor, bundle: { passphrase: PASSPHRASE, move, sourceName: 'bench' }, overwrite: true },
        path.join(dir, move ? 'move.bundle' : 'copy.bundle'),
      ),
    );
    return { records: s.count, bytes: s.bytes, stateChanged: s.stateChanged, ...t, peakRssMb: peakRssMb() };
  });
}

async function bundleImport(dir: string): Promise<Result> {
  return withStore(dir, 'b', async (store) => {
    const file = path.join(dir, 'move.bundle');
    const { value: s, ...t } = await timed(() =>
      importPsks(store, createReadStream(file, { highWaterMark: 256 * 1024 }), {
        actor,
        fileName: file,
        passphrase: PASSPHRASE,
      }),
    );
    return { records: s.records, inserted: s.inserted, ...t, peakRssMb: peakRssMb() };
  });
}

async function setupBinExport(dir: string): Promise<Result> {
  return withStore(dir, 'c', async (store) => {
    const { value: s, ...t } = await timed(() =>
      exportPsksToFile(
        store,
        {
          format: 'setup-bin',
          actor,
          setupBin: {
            currentMebxPassword: new Secret('admin'),
            newMebxPassword: new Secret('P@ssw0rd!x'),
            hostNamePattern: 'pc-{n:5}',
            domainName: 'corp.example',
            provisioningServerAddress: '10.0.0.5',
            provisioningServerPort: 9971,
          },
        },
        path.join(dir, 'setup.bin'),
      ),
    );
    return { records: s.count, bytes: s.bytes, ...t, peakRssMb: peakRssMb() };
  });
}

function runPhase(phase: string, dir: string, pairs: number): Result {
  const self = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [...process.execArgv, self, '--phase', phase, dir, String(pairs)], {
    encoding: 'utf8',
    maxBuffer: 1024 * 1024,
  });
  if (child.status !== 0) throw new Error(`phase ${phase} failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as Result;
}

async function phase(name: string, dir: string, pairs: number): Promise<Result> {
  switch (name) {
    case 'seed':
      return seed(dir, pairs);
    case 'bundle-export-copy':
      return bundleExport(dir, false);
    case 'bundle-export-move':
      return bundleExport(dir, true);
    case 'bundle-import':
      return bundleImport(dir);
    case 'setupbin-export':
      return setupBinExport(dir);
    default:
      throw new Error(`unknown phase ${name}`);
  }
}

async function main(): Promise<void> {
  const at = process.argv.indexOf('--phase');
  if (at !== -1) {
    const result = await phase(
      process.argv[at + 1] ?? '',
      process.argv[at + 2] ?? '',
      Number(process.argv[at + 3] ?? '0'),
    );
    process.stdout.write(JSON.stringify(result));
    return;
  }
  const pairs = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 1_000_000);
  const dir = mkdtempSync(path.join(tmpdir(), 'amt-scs-bench-transfer-'));
  try {
    const seeded = runPhase('seed', dir, pairs);
    const copy = runPhase('bundle-export-copy', dir, pairs);
    const move = runPhase('bundle-export-move', dir, pairs);
    const imported = runPhase('bundle-import', dir, pairs);
    const setupbin = runPhase('setupbin-export', dir, pairs);
    const result = {
      node: process.version,
      loadavg1: Number((loadavg()[0] ?? 0).toFixed(2)),
      scrypt: DEFAULT_SCRYPT_PARAMS,
      seed: seeded,
      bundleExportCopy: { ...copy, targetMs: 10_000, targetPeakRssMb: 300 },
      bundleExportMove: { ...move, targetMs: 10_000, targetPeakRssMb: 300 },
      bundleImport: { ...imported, targetMs: 10_000, targetPeakRssMb: 300 },
      setupBinExport: { ...setupbin, targetMs: 1000 },
    };
    process.stderr.write(
      `seed: ${pairs} + ${SETUPBIN_RECORDS} pairs generated in ${seeded.ms} ms (not measured)\n` +
        `bundle export (copy) ${copy.records}: ${copy.ms} ms (main thread CPU ${copy.mainCpuMs} ms), peak RSS ${copy.peakRssMb} MB, ${copy.bytes} bytes\n` +
        `bundle export (move) ${move.records}: ${move.ms} ms (main thread CPU ${move.mainCpuMs} ms), peak RSS ${move.peakRssMb} MB\n` +
        `bundle import ${imported.records} into a fresh database: ${imported.ms} ms (main thread CPU ${imported.mainCpuMs} ms), peak RSS ${imported.peakRssMb} MB\n` +
        `setup.bin export ${setupbin.records}: ${setupbin.ms} ms (main thread CPU ${setupbin.mainCpuMs} ms), peak RSS ${setupbin.peakRssMb} MB, ${setupbin.bytes} bytes\n`,
    );
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
