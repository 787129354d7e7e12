/**
 * The pieces of bench/amt-client.ts one at a time, CPU time, this tree against another in one
 * process (rounds alternated, order swapped every round): how the per-change figures of issue #4
 * round four were taken.
 *   parse   parseWsman of the 18 reply shapes (bench/wsman-shapes.ts), µs per reply
 *   build   operation + envelope + Buffer for the 16 requests, µs per request
 *   digest  3 challenges parsed and 21 Authorization headers (one device), µs per device
 * Run: nice -n 10 node --import tsx bench/wsman-parts.ts --base DIR [--rounds 30]
 * (DIR: a checkout with bench/wsman-shapes.ts, e.g. `git worktree add /tmp/base <commit>` with
 * node_modules linked). Without --base, this tree against itself (an A/A check).
 */
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const argText = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
};
const rounds = Number(argText('rounds')) || 30;
const here = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const baseDir = argText('base') ?? here;
const load0 = loadavg()[0] ?? 0;

interface Tree {
  readonly parse: typeof import('../src/amt/wsman/parse.ts');
  readonly envelope: typeof import('../src/amt/wsman/envelope.ts');
  readonly digest: typeof import('../src/amt/http/digest.ts');
  readonly secret: typeof import('../src/secret.ts');
  readonly shapes: typeof import('./wsman-shapes.ts');
}
async function loadTree(root: string): Promise<Tree> {
  const from = <T>(file: string): Promise<T> => import(pathToFileURL(path.join(root, file)).href) as Promise<T>;
  return {
    parse: await from('src/amt/wsman/parse.ts'),
    envelope: await from('src/amt/wsman/envelope.ts'),
    digest: await from('src/amt/http/digest.ts'),
    secret: await from('src/secret.ts'),
    shapes: await from('bench/wsman-shapes.ts'),
  };
}

const CHALLENGE =
  'Digest realm="Digest:A3829B3827DE4D33D4449B366831FD01", nonce="Q2hhbGxlbmdlTm9uY2UwMDAwMDAwMQ==",stale="false",qop="auth"';
const MESSAGE_ID = 'uuid:6b1d3f4e-1c2b-4e58-9c8e-5a7d0e9f1a23';

/** Each part: one unit of work, and how many units it counts for. */
interface Part {
  readonly run: () => number;
  readonly units: number;
  readonly reps: number;
}

function parts(t: Tree): Record<'parse' | 'build' | 'digest', Part> {
  const replies = [...t.shapes.ourReplies, t.shapes.R.enumerate, t.shapes.R.pull].map((x) => Buffer.from(x));
  const password = new t.secret.Secret('N3w-Admin!pw');
  return {
    parse: {
      units: replies.length,
      reps: 3000,
      run: () => {
        let n = 0;
        for (const b of replies) n += t.parse.parseWsman(b).action?.length ?? 0;
        return n;
      },
    },
    build: {
      units: t.shapes.ours.length,
      reps: 3000,
      run: () => {
        let n = 0;
        for (const make of t.shapes.ours) {
          const op = make() as { readonly request: Parameters<Tree['envelope']['buildEnvelope']>[0] };
          n += Buffer.from(t.envelope.buildEnvelope(op.request, MESSAGE_ID), 'utf8').length;
        }
        return n;
      },
    },
    digest: {
      units: 1,
      reps: 2000,
      run: () => {
        let n = 0;
        for (let c = 0; c < 3; c++) {
          const session = new t.digest.DigestSession(t.digest.parseDigestChallenge([CHALLENGE]));
          for (let k = 0; k < (c === 1 ? 17 : 2); k++)
            n += session.authorize('admin', password, 'POST', '/wsman').length;
        }
        return n;
      },
    },
  };
}

const sides = [
  { name: 'base', parts: parts(await loadTree(baseDir)) },
  { name: 'this', parts: parts(await loadTree(here)) },
] as const;
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? Number.NaN;
let sink = 0;
const result: Record<string, unknown> = { bench: 'wsman-parts', base: baseDir, rounds };
for (const part of ['parse', 'build', 'digest'] as const) {
  const per: Record<'base' | 'this', number[]> = { base: [], this: [] };
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
      const p = side.parts[part];
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < p.reps; i++) sink += p.run();
      const cpu = process.cpuUsage(cpu0);
      per[side.name].push((cpu.user + cpu.system) / (p.reps * p.units));
    }
  }
  result[part] = {
    unit: part === 'parse' ? 'µs per reply' : part === 'build' ? 'µs per request' : 'µs per device',
    base: Number(median(per.base).toFixed(2)),
    this: Number(median(per.this).toFixed(2)),
    pairedRatio: Number(median(per.this.map((x, i) => x / (per.base[i] ?? Number.NaN))).toFixed(3)),
  };
}
result.load = [load0, loadavg()[0] ?? 0].map((x) => Number(x.toFixed(2)));
if (sink < 0) console.error(sink);
process.stdout.write(`${JSON.stringify(result)}\n`);
