/**
 * The sending side of bench/hello.ts's TCP intake phase, in a process of its own so that its
 * CPU is not the listener's: `senders` concurrent loops, each from its own loopback address (as
 * devices send, and so the 4-tuples do not run out), each sending 32-byte version 2 hellos one
 * connection at a time (connect, write, half-close, wait for the server to close) until
 * `total` hellos have been sent. Forked by bench/hello.ts; never run by hand.
 */
import net from 'node:net';
import { generatePid } from '../src/psk/generate.ts';

export interface SendOrder {
  readonly type: 'send';
  readonly port: number;
  readonly senders: number;
  readonly total: number;
  /** First two octets of the senders' addresses, e.g. "127.20": sender i is 127.20.x.y. */
  readonly addressPrefix: string;
}

export interface SendReport {
  readonly type: 'sent';
  /** Hellos whose connection was made and written and closed without error. */
  readonly sent: number;
  readonly errors: Record<string, number>;
  readonly ms: number;
}

function hello(i: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt16LE(1, 0);
  b.writeUInt16LE(2, 2);
  b.writeUInt32LE(0, 4);
  b.writeUInt32LE(i, 8);
  b.writeUInt32LE(0x8086_0000 + (i % 65536), 12);
  b.write(generatePid(), 24, 'latin1');
  return b;
}

function sendOne(port: number, localAddress: string, message: Buffer): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    s.setNoDelay(true);
    let failed: string | undefined;
    s.on('connect', () => s.end(message));
    s.on('error', (e: NodeJS.ErrnoException) => (failed = e.code ?? e.message));
    s.resume();
    s.on('close', () => resolve(failed));
  });
}

async function run(order: SendOrder): Promise<SendReport> {
  const messages = Array.from({ length: 512 }, (_, i) => hello(i));
  let next = 0;
  let sent = 0;
  const errors: Record<string, number> = {};
  const t0 = performance.now();
  const lane = async (k: number): Promise<void> => {
    const address = `${order.addressPrefix}.${Math.floor(k / 250)}.${(k % 250) + 1}`;
    while (next < order.total) {
      const i = next++;
      const error = await sendOne(order.port, address, messages[i % 512] as Buffer);
      if (error === undefined) sent++;
      else errors[error] = (errors[error] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: order.senders }, (_, k) => lane(k)));
  return { type: 'sent', sent, errors, ms: performance.now() - t0 };
}

process.on('message', (msg: SendOrder) => {
  if (msg.type !== 'send') return;
  void run(msg).then((report) => process.send?.(report));
});
process.on('disconnect', () => process.exit(0));
