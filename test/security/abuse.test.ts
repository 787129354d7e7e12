import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { encodePskHello } from '../../simulator/hello/encode.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startServer } from '../../src/main.ts';
import type { PskPair } from '../../src/psk/formats/pair.ts';
import { generatePid } from '../../src/psk/generate.ts';
import { addPsks, fleetFor, leaks, randomPort, secretsOf, startTestScs, type TestScs } from '../e2e/harness.ts';

/**
 * Hello abuse (docs/security.md, "Hello abuse"), over real sockets against the real server:
 * a hello with a real PID from a host without the PPS, rate limits per address and per PID,
 * a flood from many loopback sources, slow and oversized connections on the hello and API
 * ports; each time a real simulated device provisioned during the attack.
 */

/** An attacker source address: 127.250-254.x.y, away from the harness's device ranges (127.100-249). */
function attackerAddress(): string {
  return `127.${250 + randomInt(5)}.${randomInt(256)}.${1 + randomInt(254)}`;
}

function uuid(): string {
  const h = Array.from({ length: 16 }, () => randomInt(256).toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function helloFor(pid: string, device = uuid()): Buffer {
  return Buffer.from(encodePskHello({ adminCredentialsSet: false, retryCount: 0, uuid: device, pid }));
}

/** One hello the way a device sends it: connect, write, close. Resolves when the socket closed. */
function sendHello(port: number, bytes: Buffer, localAddress: string): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => s.end(bytes));
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
}

/** Sends `hellos` with at most `concurrency` connections open at once. */
async function flood(port: number, hellos: readonly { bytes: Buffer; from: string }[], concurrency: number) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < hellos.length) {
        const h = hellos[next++] as { bytes: Buffer; from: string };
        await sendHello(port, h.bytes, h.from);
      }
    }),
  );
}

async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function counter(scs: TestScs, name: string, labels = ''): Promise<number> {
  const text = await scs.server.metrics.registry.metrics();
  const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

/** A real device (simulator) provisioned from its own address while the test's attack runs. */
async function legitimateDevice(scs: TestScs, port: number): Promise<{ psks: PskPair[]; stop: () => Promise<void> }> {
  const psks = await addPsks(scs.store, 1, 'lab');
  await addPsks(scs.store, 2, 'lab', 'available');
  const fleet = await fleetFor(scs, psks, port, { timeFactor: 0.05 });
  return { psks, stop: () => fleet.stop() };
}

async function provisioned(scs: TestScs, psk: PskPair): Promise<void> {
  await waitFor(
    () => scs.finished.some((f) => f.job.pid === psk.pid && f.state === 'succeeded'),
    'the legitimate device provisioned',
    90_000,
  );
  assert.equal((await scs.store.psks.get(psk.pid))?.state, 'consumed');
}

describe('a hello with a real PID from a host that does not hold the PPS', () => {
  it('the failed connect-back returns the PSK to its previous state, the audit shows it, and the real device is provisioned with it afterwards', async () => {
    const port = randomPort();
    const scs = await startTestScs({ amtTlsPort: port });
    try {
      const [victim] = await addPsks(scs.store, 1, 'lab');
      await addPsks(scs.store, 2, 'lab', 'available');
      assert.ok(victim !== undefined);
      // Nothing listens on the attacker's address: the connect-back is refused at once.
      const attacker = attackerAddress();
      await sendHello(scs.helloPort, helloFor(victim.pid), attacker);
      const [failed] = await scs.waitFinished(1);
      assert.equal(failed?.state, 'failed');
      assert.match(failed.code ?? '', /^SCS_TLS_/);
      const row = await scs.store.psks.get(victim.pid);
      assert.deepEqual([row?.state, row?.priorState, row?.deviceUuid], ['exported', null, null]);
      const audit = await scs.store.audit.list({ pid: victim.pid, limit: 20 });
      const released = audit.find((e) => e.action === 'psk.state' && e.detail.release === 'failed attempt');
      assert.ok(released !== undefined, audit.map((e) => `${e.action} ${JSON.stringify(e.detail)}`).join('\n'));
      assert.equal(released.detail.to, 'exported');

      const fleet = await fleetFor(scs, [victim], port, { timeFactor: 0.05 });
      try {
        await provisioned(scs, victim);
      } finally {
        await fleet.stop();
      }
      assert.deepEqual(leaks(scs.logs, secretsOf([victim])), []);
      assert.equal((await scs.store.audit.verify()).ok, true);
    } finally {
      await scs.stop();
    }
  });
});

describe('hello rate limits', () => {
  it('one source address over its burst is dropped before any lookup, counted, and audited once', async () => {
    const scs = await startTestScs({
      amtTlsPort: randomPort(),
      config: { helloRateAddressBurst: 5, helloRateAddressPerMinute: 1 },
    });
    try {
      const from = attackerAddress();
      const hellos = Array.from({ length: 30 }, () => ({ bytes: helloFor(generatePid()), from }));
      await flood(scs.helloPort, hellos, 1);
      await waitFor(async () => (await counter(scs, 'scs_hellos_received_total')) === 5, '5 hellos through');
      assert.equal(await counter(scs, 'scs_hellos_rate_limited_total', '{by="address"}'), 25);
      // Episodes are audited in batches (every 500 ms): one entry, one episode, this address.
      await waitFor(
        async () => (await scs.store.audit.list({ action: 'hello.rate_limited', limit: 100 })).length > 0,
        'the rate-limited episode audited',
      );
      const limited = await scs.store.audit.list({ action: 'hello.rate_limited', limit: 100 });
      assert.equal(limited.length, 1);
      assert.deepEqual(
        [limited[0]?.detail.by, limited[0]?.detail.address, limited[0]?.detail.addresses, limited[0]?.detail.count],
        ['address', from, from, 1],
      );
      // The five unknown PIDs that got through are audited together, not one write each.
      await waitFor(
        async () => (await scs.store.audit.list({ action: 'hello.unknown_pid', limit: 100 })).length > 0,
        'the unknown PIDs audited',
      );
      const unknown = await scs.store.audit.list({ action: 'hello.unknown_pid', limit: 100 });
      assert.equal(
        unknown.reduce((n, e) => n + e.pids.length, 0),
        5,
      );
      assert.equal(
        unknown.reduce((n, e) => n + Number(e.detail.count), 0),
        5,
      );
    } finally {
      await scs.stop();
    }
  });

  it('one PID over its burst is dropped whatever the source address, and its PSK ends where it was', async () => {
    const scs = await startTestScs({
      amtTlsPort: randomPort(),
      config: { helloRatePidBurst: 3, helloRatePidPerMinute: 1 },
    });
    try {
      const [victim] = await addPsks(scs.store, 1, 'lab');
      assert.ok(victim !== undefined);
      const hellos = Array.from({ length: 12 }, () => ({ bytes: helloFor(victim.pid), from: attackerAddress() }));
      await flood(scs.helloPort, hellos, 4);
      await waitFor(
        async () => (await counter(scs, 'scs_hellos_rate_limited_total', '{by="pid"}')) === 9,
        '9 hellos limited by PID',
      );
      await scs.server.runner.idle();
      assert.ok((await counter(scs, 'scs_hellos_received_total')) <= 3);
      await waitFor(
        async () => (await scs.store.audit.list({ action: 'hello.rate_limited', limit: 10 })).length > 0,
        'the rate-limited episode audited',
      );
      const [limited] = await scs.store.audit.list({ action: 'hello.rate_limited', limit: 10 });
      assert.deepEqual([limited?.detail.by, limited?.pids], ['pid', [victim.pid]]);
      assert.equal((await scs.store.psks.get(victim.pid))?.state, 'exported');
    } finally {
      await scs.stop();
    }
  });
});

describe('floods, slow and oversized connections on the hello port', () => {
  it('3,000 hellos from 600 source addresses: every one is accounted for, and a real device saying hello during the flood is provisioned', async () => {
    const port = randomPort();
    const scs = await startTestScs({ amtTlsPort: port, config: { logLevel: 'warn' } });
    try {
      const sources = Array.from({ length: 600 }, attackerAddress);
      const hellos = Array.from({ length: 3000 }, (_, i) => ({
        bytes: helloFor(generatePid()),
        from: sources[i % sources.length] as string,
      }));
      const t0 = performance.now();
      const attack = flood(scs.helloPort, hellos, 64).then(() => performance.now() - t0);
      const device = await legitimateDevice(scs, port);
      try {
        const floodMs = await attack;
        await provisioned(scs, device.psks[0] as PskPair);
        // Diagnostics only (speed is measured in bench/hello-flood.ts).
        console.log(
          `flood sent in ${Math.round(floodMs)} ms; device provisioned after ${Math.round(performance.now() - t0)} ms`,
        );
      } finally {
        await device.stop();
      }
      const c = scs.server.listener.counters();
      await waitFor(
        async () =>
          (await counter(scs, 'scs_hellos_received_total')) +
            (await counter(scs, 'scs_hellos_rate_limited_total', '{by="address"}')) +
            (await counter(scs, 'scs_hellos_rate_limited_total', '{by="pid"}')) +
            (await counter(scs, 'scs_hellos_rate_limited_total', '{by="pending"}')) ===
          scs.server.listener.counters().received,
        'every hello received, or dropped and counted',
      );
      assert.ok(c.received >= 3000, `${c.received} hellos decoded`);
      assert.equal((await scs.store.audit.verify()).ok, true);
    } finally {
      await scs.stop();
    }
  });

  it('one host holding helloMaxConnectionsPerAddress slow connections gets no more: the rest are closed on accept, counted and audited once, and a real device is provisioned meanwhile', async () => {
    const port = randomPort();
    // A long time bound, so only the per-address cap can free the server from this host.
    const scs = await startTestScs({
      amtTlsPort: port,
      config: { helloMaxConnectionsPerAddress: 4, helloTimeoutMs: 60_000, logLevel: 'info' },
    });
    const sockets: net.Socket[] = [];
    const connect = (from: string): Promise<net.Socket> =>
      new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: scs.helloPort, localAddress: from }, () => resolve(s));
        s.on('error', () => undefined);
        sockets.push(s);
      });
    try {
      const attacker = attackerAddress();
      const half = helloFor(generatePid()).subarray(0, 16);
      const held = await Promise.all(Array.from({ length: 4 }, () => connect(attacker)));
      for (const s of held) s.write(half);
      await waitFor(() => scs.server.listener.counters().open === 4, 'the four slow connections held');
      // 200 more from the same host: each is closed on accept, whatever it sends.
      const refused = await Promise.all(
        Array.from({ length: 200 }, async () => {
          const s = await connect(attacker);
          s.write(half);
          await new Promise((resolve) => s.once('close', resolve));
        }),
      );
      assert.equal(refused.length, 200);
      assert.equal(await counter(scs, 'scs_hellos_rate_limited_total', '{by="open_per_address"}'), 200);
      const c = scs.server.listener.counters();
      assert.deepEqual([c.dropped.perAddress, c.open, c.openAddresses], [200, 4, 1]);
      // One episode: one audit entry, naming the host, and one warning in the log.
      await waitFor(
        async () => (await scs.store.audit.list({ action: 'hello.rate_limited', limit: 10 })).length > 0,
        'the refusals audited',
      );
      const audit = await scs.store.audit.list({ action: 'hello.rate_limited', limit: 10 });
      assert.deepEqual(
        audit.map((e) => [e.detail.by, e.detail.address, e.detail.limit, e.detail.count]),
        [['open_per_address', attacker, 4, 1]],
      );
      assert.equal(scs.logs.filter((l) => l.includes('hello connections refused')).length, 1);
      // The held connections stay held (60 s), and a real device from its own address is served.
      const device = await legitimateDevice(scs, port);
      try {
        await provisioned(scs, device.psks[0] as PskPair);
      } finally {
        await device.stop();
      }
      assert.equal(scs.server.listener.counters().dropped.timeout, 0);
    } finally {
      for (const s of sockets) s.destroy();
      await scs.stop();
    }
  });

  it('slow senders (a byte at a time) and oversized hellos are cut off, and a real device is provisioned meanwhile', async () => {
    const port = randomPort();
    const scs = await startTestScs({ amtTlsPort: port, config: { helloTimeoutMs: 500 } });
    const slow: net.Socket[] = [];
    try {
      // A valid hello, one byte every 100 ms: 3.2 s for 32 bytes, far past the 500 ms allowed.
      const hello = helloFor(generatePid());
      let at = 0;
      const trickle = setInterval(() => {
        if (at < hello.length - 1) at++;
        for (const s of slow) if (!s.destroyed) s.write(hello.subarray(at - 1, at));
      }, 100);
      const closed: Promise<void>[] = [];
      for (let i = 0; i < 100; i++) {
        const s = net.connect({ host: '127.0.0.1', port: scs.helloPort, localAddress: attackerAddress() });
        s.on('error', () => undefined);
        closed.push(new Promise((resolve) => s.on('close', () => resolve())));
        slow.push(s);
      }
      // Oversized: more than the longest possible hello.
      const big = net.connect({ host: '127.0.0.1', port: scs.helloPort, localAddress: attackerAddress() });
      big.on('error', () => undefined);
      big.write(Buffer.alloc(64 * 1024, 3));
      closed.push(new Promise((resolve) => big.on('close', () => resolve())));
      const device = await legitimateDevice(scs, port);
      try {
        await provisioned(scs, device.psks[0] as PskPair);
      } finally {
        await device.stop();
      }
      await Promise.all(closed);
      clearInterval(trickle);
      const c = scs.server.listener.counters();
      assert.ok(c.dropped.timeout >= 100, `${c.dropped.timeout} timed out`);
      assert.equal(c.malformed['too-long'], 1);
    } finally {
      for (const s of slow) s.destroy();
      await scs.stop();
    }
  });
});

describe('slow, idle and oversized clients on the API port', () => {
  it('connections over apiMaxConnections are closed on accept, a header trickle is cut after the headers timeout, a big body is refused 413', async () => {
    const dir = (await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/scs-api-abuse-`);
    const config = loadConfig({
      flags: {
        dataDir: dir,
        helloHost: '127.0.0.1',
        helloPort: 0,
        apiPort: 0,
        apiMaxConnections: 5,
        logLevel: 'silent',
      },
      env: {},
    });
    const server = await startServer(config, { log: createLogger('silent'), api: true });
    const sockets: net.Socket[] = [];
    try {
      const url = new URL(server.api?.url ?? '');
      const port = Number(url.port);
      const openSocket = (): Promise<{ socket: net.Socket; closed: Promise<number> }> =>
        new Promise((resolve) => {
          const started = Date.now();
          const socket = net.connect({ host: '127.0.0.1', port }, () =>
            resolve({ socket, closed: new Promise((r) => socket.on('close', () => r(Date.now() - started))) }),
          );
          socket.on('error', () => undefined);
          sockets.push(socket);
        });
      // Five slow clients hold the five slots, trickling a header byte every 500 ms.
      const held = await Promise.all(Array.from({ length: 5 }, openSocket));
      const trickle = setInterval(() => {
        for (const h of held) if (!h.socket.destroyed) h.socket.write('X');
      }, 500);
      for (const h of held) h.socket.write('GET /api/v1/psks HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      await sleep(200);
      const extra = await openSocket();
      const extraClosedMs = await extra.closed;
      assert.ok(extraClosedMs < 5000, 'the sixth connection is closed at once');
      // The slow ones are cut by the headers timeout (10 s, checked every second), not kept forever.
      const heldMs = await Promise.all(held.map((h) => h.closed));
      clearInterval(trickle);
      assert.ok(
        heldMs.every((ms) => ms < 20_000),
        `slow clients closed after ${heldMs.join(', ')} ms`,
      );
      // With the slots free again, a big body is refused without being read whole.
      const res = await fetch(`${url.origin}/api/v1/psks/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer nope' },
        body: JSON.stringify({ pad: 'x'.repeat(2 * 1024 * 1024) }),
      });
      assert.ok([401, 413].includes(res.status), `status ${res.status}`);
      const res2 = await fetch(`${url.origin}/api/v1/psks/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-big': 'y'.repeat(64 * 1024) },
        body: '{}',
      }).catch((e: unknown) => e);
      assert.ok(res2 instanceof Error || (res2 as Response).status === 431, 'a 64 KiB header is refused');
    } finally {
      for (const s of sockets) s.destroy();
      await server.stop({ graceMs: 0 });
      (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
    }
  });
});
