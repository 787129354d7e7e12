/**
 * The AMT client layers alone (client.ts, Digest, envelope build, reply parse, the operations'
 * typed results) over an in-memory transport: the part of the server's CPU per device that
 * bench/provision.ts's floor does not run. One "device" is three sessions, each opened by a
 * Digest 401, carrying the §6 PSK sequence (bench/wsman-shapes.ts): 19 WS-Man exchanges and 3
 * challenges. The fake transport answers each request with its reply shape, RelatesTo set to
 * the request's MessageID, as AMT sends it (chunk-decoded body, AMT's headers). Its own cost
 * is the same whatever the client does, as long as the request bytes are.
 * Run: nice -n 10 node --import tsx bench/amt-client.ts [--seconds 4] [--rounds 6]
 * Prints CPU µs per device and per exchange; compare two trees by running it in each, alternated.
 */
import { loadavg } from 'node:os';
import { createAmtClient, type AmtClient } from '../src/amt/client.ts';
import type { HttpResponse } from '../src/amt/http/response.ts';
import type { HttpRequest, HttpTransport, RequestOptions } from '../src/amt/http/transport.ts';
import type { Operation } from '../src/amt/wsman/operation.ts';
import { getSetupAndConfigurationService } from '../src/amt/wsman/ops/setup-and-configuration.ts';
import { enumerateSoftwareIdentity } from '../src/amt/wsman/ops/software-identity.ts';
import { Secret } from '../src/secret.ts';
import { ourReplies, ours, R, REALM } from './wsman-shapes.ts';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]) || dflt;
};
const seconds = arg('seconds', 4);
const rounds = arg('rounds', 6);
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

const enumeration = [template(R.enumerate), template(R.pull)];
const sequence = ourReplies.map(template);
const verify = [template(R.setup)];
const EXCHANGES_PER_DEVICE = enumeration.length + sequence.length + verify.length;
const password = new Secret('N3w-Admin!pw');

function client(transport: ReplayTransport): AmtClient {
  return createAmtClient({ transport, username: 'admin', password, callTimeoutMs: 60_000 });
}

const transport = new ReplayTransport();
const controller = new AbortController();
const signal = controller.signal;

async function device(): Promise<number> {
  let n = 0;
  // Session 1: the facts (Enumerate + Pull of CIM_SoftwareIdentity).
  transport.session(enumeration);
  const a = client(transport);
  n += (await a.call(enumerateSoftwareIdentity(), { signal })).items.length;
  // Session 2: the configuration sequence, each operation built as the steps build it.
  transport.session(sequence);
  const b = client(transport);
  for (const make of ours) {
    const op = make() as Operation<unknown>;
    if ((await b.call(op, { signal })) !== undefined) n++;
  }
  // Session 3: the verification Get.
  transport.session(verify);
  const c = client(transport);
  n += (await c.call(getSetupAndConfigurationService(), { signal })).provisioningState;
  return n;
}

/** CPU time (user + system, every thread: GC included), not wall time: the machine is shared. */
async function measure(ms: number): Promise<{ devices: number; cpuUs: number }> {
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

await measure(500);
const perRound: number[] = [];
for (let r = 0; r < rounds; r++) {
  const m = await measure((seconds * 1000) / rounds);
  perRound.push(m.cpuUs / m.devices);
}
const sorted = [...perRound].sort((x, y) => x - y);
const median = ((sorted[(rounds - 1) >> 1] ?? 0) + (sorted[rounds >> 1] ?? 0)) / 2;
process.stdout.write(
  `${JSON.stringify({
    bench: 'amt-client',
    exchangesPerDevice: EXCHANGES_PER_DEVICE,
    usPerDevice: { median: Number(median.toFixed(1)), min: Number((sorted[0] ?? 0).toFixed(1)) },
    usPerExchange: Number((median / EXCHANGES_PER_DEVICE).toFixed(2)),
    rounds: perRound.map((x) => Number(x.toFixed(1))),
    load: [load0[0], loadavg()[0]].map((x) => Number((x ?? 0).toFixed(2))),
  })}\n`,
);
