import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { isScsError } from '../../src/errors.ts';
import { nominalHelloDelayMs, nominalHelloOffsetsMs } from './schedule.ts';
import { HelloSender, type HelloAttempt, type HelloIdentity } from './sender.ts';
import { uuidFromBytes } from './uuid.ts';

interface Received {
  from: string;
  bytes: Buffer;
}

/** A stand-in SCS hello listener: records each connection's source address and bytes. */
async function startListener(): Promise<{
  server: net.Server;
  port: number;
  hellos: Received[];
  next(): Promise<Received>;
}> {
  const hellos: Received[] = [];
  const waiters: ((r: Received) => void)[] = [];
  const server = net.createServer((socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('end', () => {
      socket.end();
      const r = { from: socket.remoteAddress ?? '', bytes: Buffer.concat(chunks) };
      hellos.push(r);
      waiters.shift()?.(r);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  let read = 0;
  return {
    server,
    port,
    hellos,
    next: () => {
      const have = hellos[read];
      read++;
      return have !== undefined ? Promise.resolve(have) : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

const UUID = '4c4c4544-0042-3510-8052-b4c04f4b4e31';
const identity =
  (pid: string): (() => HelloIdentity) =>
  () => ({ uuid: UUID, pid, adminCredentialsSet: true });

describe('hello schedule (protocol.md §1d)', () => {
  it('waits 12 s four times, then 2 min, 20 min (five each), then 36 min', () => {
    const delays = Array.from({ length: 18 }, (_, i) => nominalHelloDelayMs(i) / 1000);
    assert.deepEqual(
      delays,
      [0, 12, 12, 12, 12, 120, 120, 120, 120, 120, 1200, 1200, 1200, 1200, 1200, 2160, 2160, 2160],
    );
  });

  it('fits 21 hellos in the default 6-hour window, the last at 5 h 26 min 48 s', () => {
    const offsets = nominalHelloOffsetsMs();
    assert.equal(offsets.length, 21);
    assert.equal(offsets.at(-1), 19_608_000);
    assert.deepEqual(offsets.slice(0, 6), [0, 12_000, 24_000, 36_000, 48_000, 168_000]);
  });
});

describe('HelloSender', () => {
  let scs: Awaited<ReturnType<typeof startListener>>;
  before(async () => {
    scs = await startListener();
  });
  after(() => {
    scs.server.close();
  });

  it('sends 32-byte hellos from the device address with RetryCount rising from 0', async () => {
    const sender = new HelloSender({
      scsHost: '127.0.0.1',
      scsPort: scs.port,
      localAddress: '127.77.0.5',
      timeFactor: 0.0005,
      identity: identity('ABCD1234'),
    });
    const start = scs.hellos.length;
    const attempts: HelloAttempt[] = [];
    sender.on('attempt', (a) => attempts.push(a));
    sender.start();
    const got: Received[] = [];
    for (let i = 0; i < 7; i++) got.push(await scs.next());
    sender.stop();
    assert.equal(scs.hellos.length - start >= 7, true);
    for (const [i, h] of got.entries()) {
      assert.equal(h.from, '127.77.0.5');
      assert.equal(h.bytes.length, 32);
      assert.equal(h.bytes.readUInt16LE(0), 1);
      assert.equal(h.bytes.readUInt16LE(2), 2);
      assert.equal(h.bytes.readUInt32LE(4), i);
      assert.equal(uuidFromBytes(h.bytes.subarray(8, 24)), UUID);
      assert.equal(h.bytes.subarray(24).toString('latin1'), 'ABCD1234');
    }
    assert.ok(attempts.slice(0, 7).every((a, i) => a.ok && a.retryCount === i));
    assert.ok(sender.sentTotal >= 7);
  });

  it('sends exactly the hellos that fit in the window, then reports the window closed', async () => {
    // A 60 s window at factor 0.001 holds the hellos at 0, 12, 24, 36 and 48 s; the next is at 168 s.
    const sender = new HelloSender({
      scsHost: '127.0.0.1',
      scsPort: scs.port,
      localAddress: '127.77.0.6',
      timeFactor: 0.001,
      windowMs: 60_000,
      identity: identity('WXYZ0001'),
    });
    const attempts: HelloAttempt[] = [];
    sender.on('attempt', (a) => attempts.push(a));
    sender.start();
    await once(sender, 'window-closed');
    // Let the last connection report before counting.
    while (attempts.length < 5) await new Promise((r) => setTimeout(r, 5));
    assert.equal(sender.running, false);
    assert.equal(sender.windowClosed, true);
    assert.deepEqual(
      attempts.map((a) => a.retryCount),
      [0, 1, 2, 3, 4],
    );
  });

  it('keeps to the schedule when the SCS refuses connections, RetryCount still rising', async () => {
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as net.AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    const sender = new HelloSender({
      scsHost: '127.0.0.1',
      scsPort: port,
      localAddress: '127.77.0.7',
      timeFactor: 0.0005,
      identity: identity('ABCD1234'),
    });
    const attempts: HelloAttempt[] = [];
    sender.on('attempt', (a) => attempts.push(a));
    sender.start();
    while (attempts.length < 3) await new Promise((r) => setTimeout(r, 5));
    sender.stop();
    assert.deepEqual(
      attempts.slice(0, 3).map((a) => [a.retryCount, a.ok, a.error]),
      [
        [0, false, 'ECONNREFUSED'],
        [1, false, 'ECONNREFUSED'],
        [2, false, 'ECONNREFUSED'],
      ],
    );
    assert.equal(sender.sentTotal, 0);
    assert.equal(sender.lastError, 'ECONNREFUSED');
  });

  it('stops sending when stopped and starts a new window at RetryCount 0 with the new PID', async () => {
    let pid = 'ABCD1234';
    const sender = new HelloSender({
      scsHost: '127.0.0.1',
      scsPort: scs.port,
      localAddress: '127.77.0.8',
      timeFactor: 0.0005,
      identity: () => ({ uuid: UUID, pid, adminCredentialsSet: true }),
    });
    const attempts: HelloAttempt[] = [];
    sender.on('attempt', (a) => attempts.push(a));
    sender.start();
    while (attempts.length < 3) await new Promise((r) => setTimeout(r, 5));
    sender.stop();
    const stoppedAt = attempts.length;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(attempts.length, stoppedAt, 'no hello after stop()');
    pid = 'QRST5678';
    const fromHere = scs.hellos.length;
    sender.start();
    while (attempts.length < stoppedAt + 2) await new Promise((r) => setTimeout(r, 5));
    sender.stop();
    assert.deepEqual(
      attempts.slice(stoppedAt, stoppedAt + 2).map((a) => a.retryCount),
      [0, 1],
    );
    const mine = scs.hellos.slice(fromHere).filter((h) => h.from === '127.77.0.8');
    assert.ok(mine.length >= 1);
    assert.equal(mine[0]?.bytes.subarray(24).toString('latin1'), 'QRST5678');
    assert.equal(mine[0]?.bytes.readUInt32LE(4), 0);
  });

  it('sends nothing while the device has no identity to announce', async () => {
    const sender = new HelloSender({
      scsHost: '127.0.0.1',
      scsPort: scs.port,
      localAddress: '127.77.0.9',
      timeFactor: 0.001,
      windowMs: 30_000,
      identity: () => undefined,
    });
    const attempts: HelloAttempt[] = [];
    sender.on('attempt', (a) => attempts.push(a));
    sender.start();
    await once(sender, 'window-closed');
    assert.equal(attempts.length, 0);
    assert.equal(scs.hellos.filter((h) => h.from === '127.77.0.9').length, 0);
  });

  it('refuses a time factor that is not a positive number', () => {
    for (const timeFactor of [0, -1, Number.NaN]) {
      assert.throws(
        () => new HelloSender({ scsHost: '127.0.0.1', timeFactor, identity: identity('ABCD1234') }),
        (e) => isScsError(e, 'SCS_SIM_CONFIG_INVALID'),
      );
    }
  });
});
