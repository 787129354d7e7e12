/**
 * Builds and runs bench/hello-sender.c, the lean C hello sender used by bench/hello.ts and
 * bench/hello-flood.ts: a Node client socket costs about as much CPU as the server's, so Node
 * senders on the same two cores measured themselves (docs/performance.md, "Hello intake").
 * The binary goes to bench/out/ (ignored by git) and is rebuilt when the source is newer.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CSenderOptions {
  readonly port: number;
  /** Closed loop: this many hellos in all, `concurrency` connections at a time. */
  readonly total?: number;
  /** Open loop: this many new connections per second for `seconds`. */
  readonly rate?: number;
  readonly seconds?: number;
  /** Open connections at most (open loop: connections due beyond it are skipped and counted). */
  readonly concurrency: number;
  /** Source addresses `${prefix}.x.y`, `addresses` of them used round robin (at most 64,000). */
  readonly prefix: string;
  readonly addresses: number;
  /** Distinct hellos reused round robin; 0 (default): a fresh random UUID and PID every time. */
  readonly pool?: number;
  /** Every hello names this PID. */
  readonly pid?: string;
  readonly timeoutMs?: number;
}

export interface CSenderReport {
  /** Connections started (bound and connecting). */
  readonly started: number;
  /** Hello written whole and the server's close seen: delivered. */
  readonly completed: number;
  readonly failed: number;
  /** Open loop only: due while `concurrency` were open, not started. */
  readonly skipped: number;
  readonly ms: number;
  /** Connect to the server's close, completed connections (1 ms buckets). */
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly errors: Readonly<Record<string, number>>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const source = path.join(here, 'hello-sender.c');
const binary = path.join(here, 'out', 'hello-sender');

const mtime = (file: string): number => {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return -1;
  }
};

/** Compiles the sender if needed and returns its path; throws a clear error without a C compiler. */
export function buildCSender(): string {
  if (mtime(binary) >= mtime(source)) return binary;
  mkdirSync(path.dirname(binary), { recursive: true });
  const compiler = process.env.CC ?? 'cc';
  const r = spawnSync(compiler, ['-O2', '-Wall', '-o', binary, source], { encoding: 'utf8' });
  if (r.error !== undefined) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `no C compiler: the hello benches build ${path.relative(process.cwd(), source)} with "${compiler}" (set CC, or apt-get install gcc)`
        : `cannot run the C compiler "${compiler}": ${r.error.message}`,
    );
  }
  if (r.status !== 0) throw new Error(`compiling ${source} failed:\n${r.stderr}`);
  return binary;
}

function argv(o: CSenderOptions): string[] {
  const a = ['--port', String(o.port), '--concurrency', String(o.concurrency)];
  a.push('--prefix', o.prefix, '--addresses', String(o.addresses));
  if (o.total !== undefined) a.push('--total', String(o.total));
  if (o.rate !== undefined) a.push('--rate', String(o.rate), '--seconds', String(o.seconds ?? 1));
  if (o.pool !== undefined) a.push('--pool', String(o.pool));
  if (o.pid !== undefined) a.push('--pid', o.pid);
  if (o.timeoutMs !== undefined) a.push('--timeout-ms', String(o.timeoutMs));
  return a;
}

/** Runs one sender process to the end; resolves with its report. */
export function runCSender(options: CSenderOptions): Promise<CSenderReport> {
  const exe = buildCSender();
  return new Promise((resolve, reject) => {
    const child = spawn(exe, argv(options), { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => (out += s));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`hello-sender exited with ${code}: ${out}`));
      try {
        resolve(JSON.parse(out) as CSenderReport);
      } catch (error) {
        reject(new Error(`hello-sender printed no report: ${out}`, { cause: error }));
      }
    });
  });
}
