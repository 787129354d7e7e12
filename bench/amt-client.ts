/**
 * The AMT client layers alone (client.ts, Digest, envelope build, reply parse, the operations'
 * typed results) over an in-memory transport: the part of the server's CPU per device that
 * bench/provision.ts's floor does not run. One "device" is three sessions, each opened by a
 * Digest 401, carrying the §6 PSK sequence (bench/wsman-shapes.ts): 19 WS-Man exchanges and 3
 * challenges. The fake transport answers each request with its reply shape, RelatesTo set to
 * the request's MessageID, as AMT sends it (chunk-decoded body, AMT's headers). Its own cost
 * is the same whatever the client does, as long as the request bytes are.
 * Run: nice -n 10 node --import tsx bench/amt-client.ts [--seconds 4] [--rounds 10] [--base DIR]
 * Prints CPU µs per device. With `--base DIR` (another checkout, e.g. a git worktree with its
 * node_modules linked) both trees run in this one process, in alternated rounds.
 */
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { AmtClient } from '../src/amt/client.ts';
import type { HttpResponse } from '../src/amt/http/response.ts';
import type { HttpRequest, HttpTransport, RequestOptions } from '../src/amt/http/transport.ts';
import type { Operation } from '../src/amt/wsman/operation.ts';
import { REALM } from './wsman-shapes.ts';

const argText = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
};
const arg = (name: string, dflt: number): number => Number(argText(name)) || dflt;
const seconds = arg('seconds', 4);
const rounds = arg('rounds', 10);
const load0 = loadavg();

const RELATES = '<b:RelatesTo>uuid:1</b:RelatesTo>';
interface Template {
  readonly head: string;
  readonly tail: string;
}
function template(xml: string): Template {
  const at = xml.indexOf(RELATES);
  if (at < 0) throw new Error('reply shape without RelatesTo');
  return { head: `${xml.slice(0, at)}<b:RelatesTo>`, tail: `</b:RelatesTo>${xml.slice(at + RELATES.length)}` };
}

const MESSAGE_ID = Buffer.from('<a:MessageID>');
const MESSAGE_ID_END = Buffer.from('</a:MessageID>');
const REPLY_HEADERS: Readonly<Record<string, readonly string[]>> = {
  'content-type': ['application/soap+xml; charset=UTF-8'],
  'transfer-encoding': ['chunked'],
  server: ['Intel(R) Active Management Technology 6.2.0'],
  'x-frame-options': ['DENY'],
};
const CHALLENGE_HEADERS: Readonly<Record<string, readonly string[]>> = {
  'www-authenticate': [`Digest realm="${REALM}", nonce="Q2hhbGxlbmdlTm9uY2UwMDAwMDAwMQ==",stale="false",qop="auth"`],
  'content-type': ['text/html'],
  'content-length': ['0'],
};
const EMPTY = Buffer.alloc(0);

/** Answers a session's first request with a 401, then each request with the next reply shape. */
class ReplayTransport implements HttpTransport {
  connections = 1;
  bytesSent = 0;
  bytesReceived = 0;
  #replies: readonly Template[] = [];
  #next = 0;
  #challenged = false;

  session(replies: readonly Template[]): void {
    this.#replies = replies;
    this.#next = 0;
    this.#challenged = false;
  }

  request(request: HttpRequest, _options?: RequestOptions): Promise<HttpResponse> {
    this.bytesSent += request.body.length;
    if (!this.#challenged) {
      this.#challenged = true;
      return Promise.resolve({
        status: 401,
        reason: 'Unauthorized',
        headers: CHALLENGE_HEADERS,
        body: EMPTY,
        keepAlive: true,
      });
    }
    if (request.headers.Authorization === undefined) throw new Error('no Authorization after the challenge');
    const body = request.body;
    const from = body.indexOf(MESSAGE_ID) + MESSAGE_ID.length;
    const to = body.indexOf(MESSAGE_ID_END, from);
    const t = this.#replies[this.#next++];
    if (t === undefined || from < MESSAGE_ID.length || to < 0) throw new Error('out of step');
    const reply = Buffer.from(t.head + body.toString('latin1', from, to) + t.tail, 'utf8');
    this.bytesReceived += reply.length;
    return Promise.resolve({ status: 200, reason: 'OK', headers: REPLY_HEADERS, body: reply, keepAlive: true });
  }

  close(): void {}
}

const EXCHANGES_PER_DEVICE = 19;
const controller = new AbortController();
const signal = controller.signal;

/** The modules the bench drives, from this tree or from `--base DIR` (another checkout). */
interface Tree {
  readonly client: typeof import('../src/amt/client.ts');
  readonly setup: typeof import('../src/amt/wsman/ops/setup-and-configuration.ts');
  readonly software: typeof import('../src/amt/wsman/ops/software-identity.ts');
  readonly secret: typeof import('../src/secret.ts');
  readonly shapes: typeof import('./wsman-shapes.ts');
}

async function loadTree(root: string): Promise<Tree> {
  const from = <T>(file: string): Promise<T> => import(pathToFileURL(path.join(root, file)).href) as Promise<T>;
  return {
    client: await from('src/amt/client.ts'),
    setup: await from('src/amt/wsman/ops/setup-and-configuration.ts'),
    software: await from('src/amt/wsman/ops/software-identity.ts'),
    secret: await from('src/secret.ts'),
    shapes: await from('bench/wsman-shapes.ts'),
  };
}

/** One device's three sessions, as the runner makes them. */
function deviceOf(tree: Tree): () => Promise<number> {
  const { R, ourReplies, ours } = tree.shapes;
  const enumeration = [template(R.enumerate), template(R.pull)];
  const sequence = ourReplies.map(template);
  const verify = [template(R.setup)];
  if (enumeration.length + sequence.length + verify.length !== EXCHANGES_PER_DEVICE) throw new Error('shapes changed');
  const password = new tree.secret.Secret('N3w-Admin!pw');
  const transport = new ReplayTransport();
  const client = (): AmtClient =>
    tree.client.createAmtClient({ transport, username: 'admin', password, callTimeoutMs: 60_000 });
  return async () => {
    let n = 0;
    // Session 1: the facts (Enumerate + Pull of CIM_SoftwareIdentity).
    transport.session(enumeration);
    const a = client();
    n += (await a.call(tree.software.enumerateSoftwareIdentity(), { signal })).items.length;
    // Session 2: the configuration sequence, each operation built as the steps build it.
    transport.session(sequence);
    const b = client();
    for (const make of ours) {
      const op = make() as Operation<unknown>;
      if ((await b.call(op, { signal })) !== undefined) n++;
    }
    // Session 3: the verification Get.
    transport.session(verify);
    const c = client();
    n += (await c.call(tree.setup.getSetupAndConfigurationService(), { signal })).provisioningState;
    return n;
  };
}

/** CPU time (user + system, every thread: GC included), not wall time: the machine is shared. */
async function measure(device: () => Promise<number>, ms: number): Promise<{ devices: number; cpuUs: number }> {
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  let devices = 0;
  let sink = 0;
  while (performance.now() - start < ms) {
    for (let i = 0; i < 20; i++) sink += await device();
    devices += 20;
  }
  const cpu = process.cpuUsage(cpu0);
  if (sink < 0) console.error(sink);
  return { devices, cpuUs: cpu.user + cpu.system };
}

interface Side {
  readonly name: string;
  readonly device: () => Promise<number>;
  readonly rounds: number[];
}
const here = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const sides: Side[] = [{ name: 'this', device: deviceOf(await loadTree(here)), rounds: [] }];
const baseDir = argText('base');
if (baseDir !== undefined) sides.unshift({ name: 'base', device: deviceOf(await loadTree(baseDir)), rounds: [] });

for (const side of sides) await measure(side.device, 500);
// Short rounds, alternated (and in the same process when comparing): load drifts on both sides alike.
for (let r = 0; r < rounds; r++) {
  for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
    const m = await measure(side.device, (seconds * 1000) / rounds / sides.length);
    side.rounds.push(m.cpuUs / m.devices);
  }
}
const median = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((x, y) => x - y);
  return ((sorted[(sorted.length - 1) >> 1] ?? 0) + (sorted[sorted.length >> 1] ?? 0)) / 2;
};
const round1 = (x: number): number => Number(x.toFixed(1));
const result = {
  bench: 'amt-client',
  exchangesPerDevice: EXCHANGES_PER_DEVICE,
  load: [load0[0], loadavg()[0]].map((x) => Number((x ?? 0).toFixed(2))),
  ...Object.fromEntries(
    sides.map((side) => [
      side.name,
      {
        cpuUsPerDevice: { median: round1(median(side.rounds)), min: round1(Math.min(...side.rounds)) },
        rounds: side.rounds.map(round1),
      },
    ]),
  ),
};
const [first, second] = sides;
const paired =
  first === undefined || second === undefined
    ? {}
    : {
        // Each round's pair ran back to back: the median of their ratios is steadier than a ratio of medians.
        thisOverBase: Number(median(second.rounds.map((x, i) => x / (first.rounds[i] ?? Number.NaN))).toFixed(3)),
      };
process.stdout.write(`${JSON.stringify({ ...result, ...paired })}\n`);
