import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { isScsError } from '../errors.ts';
import { checkChar } from '../psk/checksum.ts';
import type { Hello } from './decode.ts';
import {
  createHelloListener,
  type ConnectionRefusal,
  type HelloListener,
  type HelloListenerOptions,
  type MalformedHello,
} from './listener.ts';

const PID = 'TESTPID' + checkChar('TESTPID');
/** A version 2 hello written out by hand from protocol.md §1a. */
const HELLO = Buffer.concat([
  Buffer.from([0, 0, 2, 0, 5, 0, 0, 0]),
  Buffer.from('00112233445566778899aabbccddeeff', 'hex'),
  Buffer.from(PID, 'ascii'),
]);

interface Harness {
  listener: HelloListener;
  port: number;
  hellos: { hello: Hello; remote: string }[];
  malformed: MalformedHello[];
  /** Resolves at the next onHello / onMalformed call. */
  next(): Promise<void>;
}

async function start(overrides: Partial<HelloListenerOptions> = {}): Promise<Harness> {
  const hellos: Harness['hellos'] = [];
  const malformed: MalformedHello[] = [];
  let wake: (() => void) | undefined;
  const poke = (): void => {
    wake?.();
    wake = undefined;
  };
  const listener = createHelloListener({
    host: '127.0.0.1',
    port: 0,
    maxConnections: 100,
    timeoutMs: 2_000,
    onHello: (hello, remote) => {
      hellos.push({ hello, remote });
      poke();
    },
    onMalformed: (m) => {
      malformed.push(m);
      poke();
    },
    ...overrides,
  });
  const { port } = await listener.listen();
  return {
    listener,
    port,
    hellos,
    malformed,
    next: () => new Promise<void>((resolve) => (wake = resolve)),
  };
}

/** Connects, writes each piece (with a pause between), optionally closes; resolves when the server closes. */
function send(
  port: number,
  pieces: readonly Buffer[],
  opts: { gapMs?: number; close?: boolean } = {},
): Promise<{ received: number }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = 0;
    socket.on('data', (d: Buffer) => (received += d.length));
    socket.on('error', () => undefined); // the server may reset us; the close below still fires
    socket.on('close', () => resolve({ received }));
    socket.on('connect', () => {
      void (async () => {
        for (const piece of pieces) {
          if (socket.destroyed) return;
          socket.write(piece);
          if (opts.gapMs) await sleep(opts.gapMs);
        }
        if (opts.close !== false) socket.end();
      })().catch(reject);
    });
  });
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await sleep(10);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('hello listener over real TCP', () => {
  let h: Harness;
  before(async () => {
    h = await start();
  });
  after(async () => {
    await h.listener.close();
  });

  it('hands over a version 2 hello with the remote address and never writes back', async () => {
    const seen = h.next();
    const { received } = await send(h.port, [HELLO]);
    await seen;
    assert.equal(received, 0);
    const last = h.hellos.at(-1);
    assert.ok(last);
    assert.equal(last.remote, '127.0.0.1');
    assert.deepEqual(last.hello, {
      version: 2,
      adminCredentialsSet: false,
      retryCount: 5,
      uuid: '33221100-5544-7766-8899-aabbccddeeff',
      pid: PID,
    });
  });

  it('accepts a slow sender that trickles the hello a few bytes at a time', async () => {
    const seen = h.next();
    const pieces = [0, 3, 9, 17, 24, 31].map((at, i, all) => HELLO.subarray(at, all[i + 1] ?? HELLO.length));
    await send(h.port, pieces, { gapMs: 15 });
    await seen;
    assert.equal(h.hellos.at(-1)?.hello.retryCount, 5);
  });

  it('refuses garbage with a precise reason and keeps serving', async () => {
    const seen = h.next();
    await send(h.port, [Buffer.from('GET / HTTP/1.1\r\n\r\n')]);
    await seen;
    assert.equal(h.malformed.at(-1)?.reason, 'bad-admin-credentials-set'); // 'GE' read as a u16
    const again = h.next();
    await send(h.port, [HELLO]);
    await again;
    assert.equal(h.hellos.at(-1)?.hello.version, 2);
  });

  it('cuts an oversized sender off as too-long without reading it all', async () => {
    const seen = h.next();
    await send(h.port, [HELLO, Buffer.alloc(64 * 1024, 0x41)]);
    await seen;
    assert.equal(h.malformed.at(-1)?.reason, 'too-long');
  });

  it('refuses a connection closed halfway as truncated, and an empty one as empty', async () => {
    let seen = h.next();
    await send(h.port, [HELLO.subarray(0, 20)]);
    await seen;
    assert.equal(h.malformed.at(-1)?.reason, 'truncated');
    seen = h.next();
    await send(h.port, []);
    await seen;
    assert.equal(h.malformed.at(-1)?.reason, 'empty');
  });

  it('counts what it saw', () => {
    const c = h.listener.counters();
    assert.equal(c.received, 3);
    assert.deepEqual(c.malformed, { 'bad-admin-credentials-set': 1, 'too-long': 1, truncated: 1, empty: 1 });
    assert.equal(c.connections, 7);
    assert.deepEqual(c.dropped, { maxConnections: 0, perAddress: 0, timeout: 0, reset: 0 });
    assert.deepEqual([c.open, c.openAddresses], [0, 0]);
  });
});

describe('hello listener limits', () => {
  it('drops connections beyond maxConnections and counts them', async () => {
    const h = await start({ maxConnections: 2 });
    try {
      const idle = [net.connect(h.port, '127.0.0.1'), net.connect(h.port, '127.0.0.1')];
      await Promise.all(idle.map((s) => new Promise((r) => s.once('connect', r))));
      await until(() => h.listener.counters().connections === 2, 'two open connections');
      const { received } = await send(h.port, [HELLO], { close: false });
      assert.equal(received, 0);
      await until(() => h.listener.counters().dropped.maxConnections === 1, 'the drop count');
      assert.equal(h.hellos.length, 0);
      for (const s of idle) s.destroy();
    } finally {
      await h.listener.close();
    }
  });

  it('closes connections beyond maxConnectionsPerAddress from one address on accept, and counts and reports them', async () => {
    const refusals: ConnectionRefusal[] = [];
    const h = await start({ maxConnectionsPerAddress: 3, onRefused: (r) => refusals.push(r) });
    const connect = (localAddress: string): Promise<net.Socket> =>
      new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: h.port, localAddress }, () => resolve(s));
        s.on('error', () => undefined);
      });
    const closed = (s: net.Socket): Promise<void> => new Promise((resolve) => s.once('close', () => resolve()));
    try {
      // One host holds its three slots with half a hello each.
      const held = await Promise.all([1, 2, 3].map(() => connect('127.0.7.1')));
      for (const s of held) s.write(HELLO.subarray(0, 10));
      await until(() => h.listener.counters().open === 3, 'three open connections');
      // Its fourth and fifth are closed at once, unread; each is reported, the first as the episode's first.
      const fourth = await connect('127.0.7.1');
      fourth.write(HELLO);
      await closed(fourth);
      const fifth = await connect('127.0.7.1');
      await closed(fifth);
      assert.equal(h.listener.counters().dropped.perAddress, 2);
      assert.deepEqual(
        refusals.map((r) => [r.remoteAddress, r.limit, r.first, r.refused]),
        [
          ['127.0.7.1', 3, true, 1],
          ['127.0.7.1', 3, false, 2],
        ],
      );
      // Another host is served meanwhile.
      const seen = h.next();
      const other = await connect('127.0.7.2');
      other.end(HELLO);
      await seen;
      assert.equal(h.hellos.at(-1)?.remote, '127.0.7.2');
      assert.deepEqual([h.listener.counters().open, h.listener.counters().openAddresses], [3, 1]);
      // Once its connections end, the first host is served again; a new refusal starts a new episode.
      for (const s of held) s.destroy();
      await until(() => h.listener.counters().open === 0, 'the held connections closed');
      assert.equal(h.listener.counters().openAddresses, 0);
      const again = h.next();
      const back = await connect('127.0.7.1');
      back.end(HELLO);
      await again;
      assert.equal(h.hellos.at(-1)?.remote, '127.0.7.1');
      assert.equal(h.hellos.length, 2);
      const refill = await Promise.all([1, 2, 3].map(() => connect('127.0.7.1')));
      await until(() => h.listener.counters().open === 3, 'three open connections again');
      await closed(await connect('127.0.7.1'));
      assert.deepEqual(refusals.at(-1)?.first, true);
      for (const s of refill) s.destroy();
    } finally {
      await h.listener.close();
    }
  });

  it('closes a connection that stays incomplete past timeoutMs', async () => {
    const h = await start({ timeoutMs: 150 });
    try {
      await send(h.port, [HELLO.subarray(0, 10)], { close: false });
      const c = h.listener.counters();
      assert.equal(c.dropped.timeout, 1);
      assert.equal(c.received, 0);
      assert.deepEqual(c.malformed, {});
    } finally {
      await h.listener.close();
    }
  });

  it('accepts a whole hello whose sender never closes, when the time is up', async () => {
    const h = await start({ timeoutMs: 150 });
    try {
      const seen = h.next();
      await send(h.port, [HELLO], { close: false });
      await seen;
      assert.equal(h.hellos.length, 1);
      assert.equal(h.listener.counters().dropped.timeout, 0);
    } finally {
      await h.listener.close();
    }
  });

  it('survives a handler that throws or rejects and counts it', async () => {
    let calls = 0;
    const h = await start({
      onHello: () => {
        calls++;
        if (calls === 1) throw new Error('boom');
        return Promise.reject(new Error('async boom'));
      },
    });
    try {
      await send(h.port, [HELLO]);
      await send(h.port, [HELLO]);
      await until(() => h.listener.counters().handlerErrors === 2, 'two handler errors');
      assert.equal(h.listener.counters().received, 2);
    } finally {
      await h.listener.close();
    }
  });

  it('reports a port in use as SCS_LISTEN_FAILED', async () => {
    const h = await start();
    try {
      const second = createHelloListener({
        host: '127.0.0.1',
        port: h.port,
        maxConnections: 1,
        timeoutMs: 1000,
        onHello: () => undefined,
      });
      await assert.rejects(
        second.listen(),
        (e) => isScsError(e, 'SCS_LISTEN_FAILED') && e.details.errno === 'EADDRINUSE',
      );
      await second.close();
    } finally {
      await h.listener.close();
    }
  });

  it('closes open connections when the listener closes', async () => {
    const h = await start({ timeoutMs: 60_000 });
    const pending = send(h.port, [HELLO.subarray(0, 5)], { close: false });
    await until(() => h.listener.counters().connections === 1, 'the connection');
    await h.listener.close();
    await pending;
  });

  it('waits on close for hellos still being handed over, so none reaches a closed store', async () => {
    let finish: (() => void) | undefined;
    let handled = false;
    const h = await start({
      onHello: async () => {
        await new Promise<void>((resolve) => (finish = resolve));
        handled = true;
      },
    });
    await send(h.port, [HELLO]);
    await until(() => finish !== undefined, 'the handler to start');
    let closed = false;
    const closing = h.listener.close().then(() => (closed = true));
    await sleep(50);
    assert.equal(closed, false, 'close returned while a handler was still running');
    finish?.();
    await closing;
    assert.equal(handled, true);
  });
});
