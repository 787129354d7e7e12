/**
 * Generates N PSKs (default 1,000,000) into a fresh SQLite database in a temp directory, as
 * `amt-scs psk generate` does (CSPRNG, AES-256-GCM per PPS, chunked transactions, audit), and
 * prints one JSON line: {count, seconds, pairsPerSecond, peakRssMB, dbBytes, ...}; a readable
 * line goes to stderr. Usage: node --import tsx bench/psk-generate.ts [count] [--keep]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
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

try {
  const { store } = await openStore({ db: `sqlite:${dbFile}`, masterKeyFile: path.join(dir, 'master.key') });
  const load = loadavg()[0] ?? 0;
  const started = performance.now();
  const result = await generatePsks(store, { count, batch: 'bench', actor: 'bench' });
  const seconds = (performance.now() - started) / 1000;
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
    closeSeconds: Number(closeSeconds.toFixed(3)),
    loadAverageAtStart: Number(load.toFixed(2)),
  };
  process.stderr.write(
    `generated ${out.count} PSKs in ${out.seconds} s (${out.pairsPerSecond}/s), peak RSS ${out.peakRssMB} MB, ` +
      `database ${(out.dbBytes / 1e6).toFixed(1)} MB, ${out.collisions} PID collisions re-drawn\n`,
  );
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  if (keep) process.stderr.write(`kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}
