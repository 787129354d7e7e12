/**
 * `npm run fuzz`: a long fuzz run of every decoder (docs/security.md, "Fuzzing the decoders").
 * Each target runs in a worker thread, one after the other, on `--inputs` inputs (default one
 * million): mutations of valid samples, random bytes and dictionary-token strings. A failure is
 * a crash (an error that is not an ScsError with a catalogue code), a broken invariant, a secret
 * in an error message, an input slower than `--slow-ms`, or a hang (no progress for `--hang-ms`:
 * the worker is stopped and the input saved). Memory: the worker's heap is capped
 * (`--max-heap-mb`) and the process RSS sampled; the peak per target is reported.
 *
 *   npm run fuzz -- [--inputs 1000000] [--targets hello,csv] [--seed S] [--jobs 2] [--out test-output/fuzz]
 *
 * Prints one JSON summary on stdout (and writes it to <out>/summary.json); reproducers go to
 * <out>/<target>-<index>.bin. Exit status 1 if anything failed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { TARGETS } from '../test/security/fuzz/targets.ts';
import { inputAt, type WorkerFailure, type WorkerInput, type WorkerMessage } from './fuzz-worker.ts';

const { values } = parseArgs({
  options: {
    inputs: { type: 'string', default: '1000000' },
    targets: { type: 'string', default: Object.keys(TARGETS).join(',') },
    seed: { type: 'string', default: new Date().toISOString().slice(0, 10) },
    'slow-ms': { type: 'string', default: '250' },
    'hang-ms': { type: 'string', default: '30000' },
    'max-heap-mb': { type: 'string', default: '512' },
    out: { type: 'string', default: 'test-output/fuzz' },
    jobs: { type: 'string', default: '1' },
  },
});
const inputs = Number(values.inputs);
const names = values.targets.split(',').filter((n) => n !== '');
for (const n of names)
  if (TARGETS[n] === undefined) throw new Error(`unknown target ${n}; known: ${Object.keys(TARGETS).join(', ')}`);
const out = values.out;
mkdirSync(out, { recursive: true });

function startWorker(data: WorkerInput, maxHeapMb: number): Worker {
  const file = new URL('./fuzz-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  // Node 20 does not carry tsx's hooks into workers: load the .ts through tsx's API (as seal-pool.ts does).
  const code = `import(${JSON.stringify(tsx)}).then((api) => api.tsImport(${JSON.stringify(file)}, ${JSON.stringify(import.meta.url)}));`;
  return new Worker(code, { eval: true, workerData: data, resourceLimits: { maxOldGenerationSizeMb: maxHeapMb } });
}

interface TargetResult {
  target: string;
  inputs: number;
  done: number;
  seconds: number;
  inputsPerSecond: number;
  accepted: number;
  refused: Record<string, number>;
  kinds: Record<string, number>;
  meanInputBytes: number;
  maxInputMs: number;
  maxInputIndex: number;
  inputsOver10ms: number;
  peakRssMb: number;
  failures: (Omit<WorkerFailure, 'input'> & { reproducer: string })[];
}

function save(name: string, failure: WorkerFailure): string {
  const file = path.join(out, `${name.replace(/[^a-z0-9.-]/gi, '_')}-${failure.index}.bin`);
  writeFileSync(file, Buffer.from(failure.input, 'hex'));
  return file;
}

async function runTarget(name: string): Promise<TargetResult> {
  const shared = new SharedArrayBuffer(8);
  const counters = new Int32Array(shared);
  const slowMs = Number(values['slow-ms']);
  const hangMs = Number(values['hang-ms']);
  const worker = startWorker(
    { target: name, seed: values.seed, inputs, slowMs, shared },
    Number(values['max-heap-mb']),
  );
  const started = performance.now();
  const result: TargetResult = {
    target: name,
    inputs,
    done: 0,
    seconds: 0,
    inputsPerSecond: 0,
    accepted: 0,
    refused: {},
    kinds: {},
    meanInputBytes: 0,
    maxInputMs: 0,
    maxInputIndex: -1,
    inputsOver10ms: 0,
    peakRssMb: 0,
    failures: [],
  };
  let peakRss = process.memoryUsage.rss();
  let lastDone = -1;
  let lastMove = Date.now();
  await new Promise<void>((resolve) => {
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      resolve();
    };
    const timer = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      const done = Atomics.load(counters, 1);
      if (done !== lastDone) {
        lastDone = done;
        lastMove = Date.now();
        return;
      }
      if (Date.now() - lastMove > hangMs) {
        const index = Atomics.load(counters, 0);
        void worker.terminate();
        void (async () => {
          const target = await (TARGETS[name] as (typeof TARGETS)[string])();
          const { kind, input } = inputAt(target, values.seed, name, index);
          const why = `hang: no progress for ${hangMs} ms`;
          const reproducer = save(name, { index, kind, why, ms: hangMs, input: input.toString('hex') });
          result.failures.push({ index, kind, why, ms: hangMs, reproducer });
          result.done = index;
          finish();
        })();
      }
    }, 200);
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'progress') {
        process.stderr.write(`${name}: ${m.done}\n`);
      } else if (m.type === 'failure') {
        const { input: _input, ...rest } = m.failure;
        result.failures.push({ ...rest, reproducer: save(name, m.failure) });
        process.stderr.write(`${name}: FAILURE at ${m.failure.index}: ${m.failure.why.split('\n')[0] ?? ''}\n`);
      } else {
        result.done = m.done;
        result.accepted = m.accepted;
        result.refused = { ...m.refused };
        result.kinds = { ...m.kinds };
        result.meanInputBytes = Math.round(m.bytes / Math.max(1, m.done));
        result.maxInputMs = Number(m.maxInputMs.toFixed(2));
        result.maxInputIndex = m.maxInputIndex;
        result.inputsOver10ms = m.over10ms;
      }
    });
    worker.on('error', (e: unknown) => {
      const index = Atomics.load(counters, 0);
      const why = `worker died: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`;
      result.failures.push({ index, kind: 'mutated', why, ms: 0, reproducer: '' });
      result.done = Atomics.load(counters, 1);
      finish();
    });
    worker.on('exit', finish);
  });
  result.seconds = Number(((performance.now() - started) / 1000).toFixed(1));
  result.inputsPerSecond = Math.round(result.done / Math.max(0.001, result.seconds));
  result.peakRssMb = Math.round(peakRss / 2 ** 20);
  return result;
}

const results: TargetResult[] = [];
const t0 = performance.now();
// --jobs targets at a time (each its own worker); results keep the target order.
const queue = [...names];
await Promise.all(
  Array.from({ length: Math.max(1, Number(values.jobs)) }, async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      const r = await runTarget(name);
      results.push(r);
      process.stderr.write(
        `${name}: ${r.done} inputs in ${r.seconds} s, ${r.failures.length} failure(s), peak RSS ${r.peakRssMb} MiB\n`,
      );
    }
  }),
);
results.sort((a, b) => names.indexOf(a.target) - names.indexOf(b.target));
const summary = {
  seed: values.seed,
  inputsPerTarget: inputs,
  node: process.version,
  totalSeconds: Number(((performance.now() - t0) / 1000).toFixed(1)),
  maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  failures: results.reduce((n, r) => n + r.failures.length, 0),
  targets: results,
};
const json = JSON.stringify(summary, null, 2);
writeFileSync(path.join(out, 'summary.json'), json);
process.stdout.write(`${json}\n`);
process.exitCode = summary.failures > 0 || results.some((r) => r.done < inputs) ? 1 : 0;
