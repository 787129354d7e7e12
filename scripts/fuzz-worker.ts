/**
 * One fuzz target in a worker thread (started by scripts/fuzz.ts). Input i is drawn from its own
 * seeded stream (seed, target, i), so any input can be rebuilt from those three values. Before
 * each input the worker publishes its index and after it the count done, in shared memory: the
 * parent sees a hang (a count that stops moving) even while this thread is stuck in a loop.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { SeededRandom } from '../simulator/fleet/prng.ts';
import { nextInput, type InputKind } from '../test/security/fuzz/mutate.ts';
import { checkSync, TARGETS } from '../test/security/fuzz/targets.ts';

export interface WorkerInput {
  readonly target: string;
  readonly seed: string;
  readonly inputs: number;
  /** An input slower than this is reported (a per-input time bound). */
  readonly slowMs: number;
  /** Int32[0]: index of the input being decoded; Int32[1]: inputs done. */
  readonly shared: SharedArrayBuffer;
}

export interface WorkerFailure {
  readonly index: number;
  readonly kind: InputKind;
  readonly why: string;
  readonly ms: number;
  /** Hex of the input (first 4 KiB). */
  readonly input: string;
}

export type WorkerMessage =
  | { readonly type: 'progress'; readonly done: number }
  | { readonly type: 'failure'; readonly failure: WorkerFailure }
  | {
      readonly type: 'done';
      readonly done: number;
      readonly accepted: number;
      readonly refused: Readonly<Record<string, number>>;
      readonly kinds: Readonly<Record<InputKind, number>>;
      readonly bytes: number;
      readonly maxInputMs: number;
      readonly maxInputIndex: number;
      readonly over10ms: number;
    };

/** Rebuilds input `index` of a run (the same bytes the worker decoded). */
export function inputAt(target: Parameters<typeof nextInput>[1], seed: string, name: string, index: number) {
  return nextInput(new SeededRandom(seed, name, index, 'input'), target);
}

async function main(): Promise<void> {
  const w = workerData as WorkerInput;
  const port = parentPort;
  if (port === null) throw new Error('fuzz-worker runs as a worker thread');
  const factory = TARGETS[w.target];
  if (factory === undefined) throw new Error(`unknown fuzz target ${w.target}`);
  const target = await factory();
  const shared = new Int32Array(w.shared);
  const refused: Record<string, number> = {};
  const kinds: Record<InputKind, number> = { mutated: 0, random: 0, tokens: 0 };
  let accepted = 0;
  let bytes = 0;
  let maxInputMs = 0;
  let maxInputIndex = -1;
  let over10ms = 0;
  const whys = new Set<string>();
  for (let i = 0; i < w.inputs; i++) {
    Atomics.store(shared, 0, i);
    const { kind, input } = inputAt(target, w.seed, w.target, i);
    kinds[kind]++;
    bytes += input.length;
    const rng = new SeededRandom(w.seed, w.target, i, 'run');
    const t0 = performance.now();
    let outcome = checkSync(target, input, rng);
    if (outcome instanceof Promise) outcome = await outcome;
    const ms = performance.now() - t0;
    if (ms > maxInputMs) {
      maxInputMs = ms;
      maxInputIndex = i;
    }
    if (ms > 10) over10ms++;
    let why: string | undefined;
    if (outcome.kind === 'accepted') accepted++;
    else if (outcome.kind === 'refused') refused[outcome.code] = (refused[outcome.code] ?? 0) + 1;
    else why = outcome.why;
    if (why === undefined && ms > w.slowMs) {
      // The machine is shared: a GC pause or a descheduled thread is not the decoder's fault. Slow
      // means slow on each of three more runs of the same input.
      let best = ms;
      for (let k = 0; k < 3 && best > w.slowMs; k++) {
        const t1 = performance.now();
        const again = checkSync(target, input, new SeededRandom(w.seed, w.target, i, 'run'));
        if (again instanceof Promise) await again;
        best = Math.min(best, performance.now() - t1);
      }
      if (best > w.slowMs) why = `slow: ${best.toFixed(1)} ms (best of 4) for ${input.length} bytes`;
    }
    if (why !== undefined) {
      // Report each distinct failure (first line) once, and at most 50 in all.
      const first = why.split('\n')[0] ?? why;
      if (!whys.has(first) && whys.size < 50) {
        whys.add(first);
        const failure: WorkerFailure = { index: i, kind, why, ms, input: input.subarray(0, 4096).toString('hex') };
        port.postMessage({ type: 'failure', failure } satisfies WorkerMessage);
      }
    }
    Atomics.store(shared, 1, i + 1);
    if ((i + 1) % 20_000 === 0) port.postMessage({ type: 'progress', done: i + 1 } satisfies WorkerMessage);
  }
  port.postMessage({
    type: 'done',
    done: w.inputs,
    accepted,
    refused,
    kinds,
    bytes,
    maxInputMs,
    maxInputIndex,
    over10ms,
  } satisfies WorkerMessage);
}

if (parentPort !== null) await main();
