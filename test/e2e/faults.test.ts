import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { encodePkiHello, encodePskHello } from '../../simulator/hello/encode.ts';
import type { Fleet } from '../../simulator/fleet/fleet.ts';
import { createAmtClient } from '../../src/amt/client.ts';
import { createTlsTransport } from '../../src/amt/connect.ts';
import { partialUnprovision } from '../../src/amt/wsman/ops/setup-and-configuration.ts';
import type { Config } from '../../src/config.ts';
import type { PskPair } from '../../src/psk/formats/pair.ts';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import { Secret } from '../../src/secret.ts';
import {
  addPsks,
  fleetFor,
  leaks,
  randomAddressBase,
  randomPort,
  secretsOf,
  startTestScs,
  type TestScs,
} from './harness.ts';

/**
 * Every simulator fault (docs/simulator.md, DeviceFaults), each ending as docs/provisioning.md
 * says: retried to success, or failed with a named code and the PSK back where it was. Plus
 * the hellos the server must not connect back to, a duplicate hello, a stand-in device that
 * does not speak WS-Management, and re-provisioning with the renewed PSK.
 */

interface One {
  scs: TestScs;
  fleet: Fleet;
  psks: PskPair[];
  port: number;
}

async function oneDevice(
  faults: string,
  options: {
    config?: Partial<Record<keyof Config, string | number>>;
    profile?: Record<string, unknown>;
    timeFactor?: number;
  } = {},
): Promise<One> {
  const port = randomPort();
  const scs = await startTestScs({
    amtTlsPort: port,
    ...(options.config === undefined ? {} : { config: options.config }),
    ...(options.profile === undefined ? {} : { profile: options.profile }),
  });
  const psks = await addPsks(scs.store, 1, 'lab');
  await addPsks(scs.store, 3, 'lab', 'available');
  const fleet = await fleetFor(scs, psks, port, {
    faults,
    ...(options.timeFactor === undefined ? {} : { timeFactor: options.timeFactor }),
  });
  return { scs, fleet, psks, port };
}

async function done(one: One): Promise<void> {
  await one.fleet.stop();
  await one.scs.stop();
}

async function pskState(one: One): Promise<string | undefined> {
  return (await one.scs.store.psks.get((one.psks[0] as PskPair).pid))?.state;
}

async function expectSuccess(one: One): Promise<void> {
  const [f] = await one.scs.waitFinished(1);
  assert.equal(f?.state, 'succeeded', `${f?.code ?? ''} ${f?.job.errorMessage ?? ''}`);
  assert.equal(await pskState(one), 'consumed');
  await one.fleet.waitFor('all-provisioned', { timeoutMs: 5000 });
  assert.deepEqual(leaks(one.scs.logs, secretsOf(one.psks)), []);
}

async function expectFailure(one: One, code: string): Promise<void> {
  const [f] = await one.scs.waitFinished(1);
  assert.equal(f?.state, 'failed');
  assert.equal(f.code, code, f.job.errorMessage ?? '');
  assert.equal(f.job.errorCode, code);
  // Failed before commit: the PSK goes back to the state it had (exported), no renewal PSK is kept.
  assert.equal(await pskState(one), 'exported');
  assert.equal((await one.scs.store.psks.countByState()).in_use, 0);
  assert.equal((await one.scs.store.devices.get(f.job.deviceUuid))?.state, 'failed');
  assert.equal(one.fleet.devices[0]?.state, 'In');
  assert.deepEqual(leaks(one.scs.logs, secretsOf(one.psks)), []);
}

describe('provisioning against device faults', () => {
  it('latency: a slow device is configured (every call waits, none times out)', async () => {
    const one = await oneDevice('latency=150');
    try {
      await expectSuccess(one);
    } finally {
      await done(one);
    }
  });

  it('drop at call K: the dropped call is retried on a new connection and the job succeeds', async () => {
    // Call 2 is a Get (the transport resends an idempotent request itself), 6 and 12 are
    // methods (GetLowAccuracyTimeSynch, AddCertificate: the step is retried), 17 is
    // CommitChanges (not resent: verification finds the device still In and starts over).
    for (const k of [2, 6, 12, 17]) {
      const one = await oneDevice(`drop@${k}`);
      try {
        await expectSuccess(one);
        const retried = one.scs.logs.filter((l) => l.includes('step failed; retrying'));
        if (k === 6 || k === 12) assert.ok(retried.length >= 1, `drop@${k}: no retry logged`);
        if (k === 17) assert.equal(one.scs.finished[0]?.job.data.restarts, 1);
      } finally {
        await done(one);
      }
    }
  });

  it('a PT_STATUS from a method: INTERNAL_ERROR twice is retried to success', async () => {
    const one = await oneDevice('status=SetTLSPSK:1x2');
    try {
      await expectSuccess(one);
    } finally {
      await done(one);
    }
  });

  it('a PT_STATUS that will not change (2054 from SetMEBxPassword) fails the job with SCS_WSMAN_RETURN_VALUE', async () => {
    const one = await oneDevice('status=SetMEBxPassword:2054', { profile: { mebxPassword: 'random' } });
    try {
      await expectFailure(one, 'SCS_WSMAN_RETURN_VALUE');
      const [f] = one.scs.finished;
      assert.match(f?.job.errorMessage ?? '', /SetMEBxPassword returned 2054 \(INVALID_PASSWORD\)/);
      // The escrowed candidates of the failed attempt are retired, not active.
      const escrow = await one.scs.store.escrow.list(f?.job.deviceUuid ?? '');
      assert.ok(escrow.length > 0 && escrow.every((e) => e.status === 'retired'));
    } finally {
      await done(one);
    }
  });

  it('reboot before commit: the lost commit is detected (device still In), the job starts over and succeeds', async () => {
    const one = await oneDevice('reboot-before-commit');
    try {
      await expectSuccess(one);
      const [f] = one.scs.finished;
      assert.equal(f?.job.data.restarts, 1);
      const actions = (await one.scs.store.devices.history(f?.job.deviceUuid ?? '')).map((e) => e.action);
      assert.ok(actions.includes('job.restarted'));
      assert.equal(one.scs.finished.length, 1, 'the hellos after the reboot were duplicates, not jobs');
    } finally {
      await done(one);
    }
  });

  it('reboot after commit: the lost reply is settled by verification (Post over TLS)', async () => {
    const one = await oneDevice('reboot-after-commit');
    try {
      await expectSuccess(one);
      assert.equal(one.scs.finished[0]?.job.data.restarts, undefined);
    } finally {
      await done(one);
    }
  });

  it('stalled handshake: each connect times out, the job fails with SCS_TLS_TIMEOUT', async () => {
    const one = await oneDevice('stall-handshake=3000', { config: { connectTimeoutMs: 200, stepRetries: 1 } });
    try {
      await expectFailure(one, 'SCS_TLS_TIMEOUT');
    } finally {
      await done(one);
    }
  });

  it('wrong PSK on the device: SCS_TLS_BAD_KEY at once, not retried, PSK back to exported', async () => {
    const one = await oneDevice('wrong-psk');
    try {
      await expectFailure(one, 'SCS_TLS_BAD_KEY');
      assert.equal(one.scs.logs.filter((l) => l.includes('step failed; retrying')).length, 0);
    } finally {
      await done(one);
    }
  });
});

describe('hellos the server does not connect back to', () => {
  it('an unknown PID and a consumed PID are audited and never connected back to', async () => {
    const port = randomPort();
    const scs = await startTestScs({ amtTlsPort: port });
    const unknown = [{ pid: generatePid(), pps: new Secret(generatePps()) }];
    const consumed = await addPsks(scs.store, 1, 'done');
    await scs.store.psks.transition({
      pids: [(consumed[0] as PskPair).pid],
      from: ['exported'],
      to: 'revoked',
      actor: 'e2e',
    });
    const fleet = await fleetFor(scs, [...unknown, ...consumed], port);
    try {
      const deadline = Date.now() + 5000;
      let entries: string[] = [];
      while (Date.now() < deadline) {
        entries = (await scs.store.audit.list({ limit: 50 })).map((e) => e.action);
        if (entries.includes('hello.unknown_pid') && entries.includes('hello.pid_unusable')) break;
        await sleep(50);
      }
      assert.ok(entries.includes('hello.unknown_pid'), entries.join(' '));
      const [unusable] = await scs.store.audit.list({ action: 'hello.pid_unusable', limit: 1 });
      assert.equal(unusable?.detail.state, 'revoked');
      assert.equal(unusable.detail.uuid, fleet.devices[1]?.uuid);
      assert.equal(unusable.detail.address, fleet.devices[1]?.address);
      assert.deepEqual(await scs.store.jobs.list(), []);
      for (const i of [0, 1]) assert.equal(fleet.device(i)?.snapshot().calls, 0);
      assert.equal(fleet.devices.filter((d) => d.lastError !== null).length, 0, 'a device saw a handshake');
      const text = await scs.server.metrics.registry.metrics();
      assert.match(text, /scs_hellos_rejected_total\{reason="unknown_pid"\} 1/);
      assert.match(text, /scs_hellos_rejected_total\{reason="pid_unusable"\} 1/);
    } finally {
      await fleet.stop();
      await scs.stop();
    }
  });

  it('refuses a version 3 hello when no provisioning certificate is imported, telling the operator to import one', async () => {
    const scs = await startTestScs({ amtTlsPort: randomPort() });
    try {
      const hello = encodePkiHello(
        { adminCredentialsSet: true, retryCount: 0, uuid: '4c4c4544-0035-5910-8051-b8c04f4e5a31' },
        [{ algorithm: 2, hash: new Uint8Array(32).fill(7) }],
      );
      await sendHello(scs.helloPort, hello);
      await waitFor(async () => (await scs.store.audit.list({ action: 'hello.pki_refused', limit: 1 })).length === 1);
      const [entry] = await scs.store.audit.list({ action: 'hello.pki_refused', limit: 1 });
      assert.equal(entry?.detail.code, 'SCS_PKI_NO_MATCHING_ROOT');
      assert.ok(
        scs.logs.some((l) => l.includes('no provisioning certificate is imported') && l.includes('pki import')),
      );
      assert.deepEqual(await scs.store.jobs.list(), []);
    } finally {
      await scs.stop();
    }
  });

  it('a repeated hello while the device is being configured is a duplicate, not a second job', async () => {
    // Hellos every 12 ms (time factor 0.001) at a device that answers every call after 100 ms.
    const one = await oneDevice('latency=100', { timeFactor: 0.001 });
    try {
      await expectSuccess(one);
      assert.equal((await one.scs.store.jobs.list()).length, 1);
      assert.ok(
        one.scs.server.runner.stats().duplicates >= 3,
        `${one.scs.server.runner.stats().duplicates} duplicates`,
      );
      const text = await one.scs.server.metrics.registry.metrics();
      assert.match(text, /scs_hellos_duplicate_total [1-9]/);
    } finally {
      await done(one);
    }
  });
});

describe('a peer that is not a device', () => {
  /** `openssl s_server` holding the PSK of a PID in the store, on a loopback address of its own. */
  async function standIn(
    extra: readonly string[],
    config: Partial<Record<keyof Config, string | number>>,
  ): Promise<{ scs: TestScs; psk: PskPair; server: ChildProcess; address: string; output: () => string }> {
    const port = randomPort();
    const scs = await startTestScs({ amtTlsPort: port, config });
    const [psk] = (await addPsks(scs.store, 1, 'lab')) as [PskPair];
    const address = randomAddressBase();
    const server = spawn(
      'openssl',
      [
        's_server',
        '-accept',
        `${address}:${port}`,
        '-psk',
        Buffer.from(psk.pps.reveal(), 'ascii').toString('hex'),
        '-psk_identity',
        psk.pid,
        '-nocert',
        '-tls1_2',
        '-cipher',
        'PSK-AES128-CBC-SHA:PSK-AES256-CBC-SHA',
        ...extra,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '';
    server.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    server.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor(() => Promise.resolve(out.includes('ACCEPT')), 10_000);
    return { scs, psk, server, address, output: () => out };
  }

  async function hello(t: { scs: TestScs; psk: PskPair; address: string }): Promise<void> {
    await sendHello(
      t.scs.helloPort,
      encodePskHello({
        adminCredentialsSet: true,
        retryCount: 0,
        uuid: '0badc0de-0000-4000-8000-000000000001',
        pid: t.psk.pid,
      }),
      t.address,
    );
  }

  async function stopStandIn(t: { scs: TestScs; server: ChildProcess }): Promise<void> {
    t.server.kill();
    if (t.server.exitCode === null && t.server.signalCode === null) await once(t.server, 'exit');
    await t.scs.stop();
  }

  it('openssl s_server -psk -nocert -www (answers GET only): the POST gets no answer, the job fails with SCS_AMT_TIMEOUT', async () => {
    const t = await standIn(['-www'], { callTimeoutMs: 800, stepRetries: 1 });
    try {
      await hello(t);
      const [f] = await t.scs.waitFinished(1, 30_000);
      assert.equal(f?.state, 'failed');
      assert.equal(f.code, 'SCS_AMT_TIMEOUT', f.job.errorMessage ?? '');
      assert.equal(f.job.step, null, 'no step completed');
      assert.equal((await t.scs.store.psks.get(t.psk.pid))?.state, 'exported');
      assert.deepEqual(leaks(t.scs.logs, [t.psk.pps.reveal()]), []);
    } finally {
      await stopStandIn(t);
    }
  });

  it('openssl s_server -psk -nocert answering HTML to the POST: the job fails with SCS_WSMAN_MALFORMED_REPLY', async () => {
    const t = await standIn([], { callTimeoutMs: 5000, stepRetries: 1 });
    try {
      await hello(t);
      // s_server prints what the client sent and sends its stdin: answer the POST with a web page.
      await waitFor(() => Promise.resolve(t.output().includes('POST /wsman')), 15_000);
      const body = '<html><body>not WS-Management</body></html>';
      t.server.stdin?.write(
        `HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
      const [f] = await t.scs.waitFinished(1, 30_000);
      assert.equal(f?.state, 'failed');
      assert.equal(f.code, 'SCS_WSMAN_MALFORMED_REPLY', f.job.errorMessage ?? '');
      assert.equal((await t.scs.store.psks.get(t.psk.pid))?.state, 'exported');
      assert.deepEqual(leaks(t.scs.logs, [t.psk.pps.reveal()]), []);
    } finally {
      await stopStandIn(t);
    }
  });
});

describe('re-provisioning', () => {
  it('after PartialUnprovision the device says hello with its renewed PSK and is provisioned again', async () => {
    const one = await oneDevice('');
    try {
      await expectSuccess(one);
      const uuid = one.fleet.devices[0]?.uuid ?? '';
      const first = await one.scs.store.devices.get(uuid);
      const renewed = first?.pid;
      assert.ok(renewed);
      const admin = await one.scs.store.devices.revealAdminPassword(uuid, { actor: 'e2e' });
      const client = createAmtClient({
        transport: createTlsTransport({
          host: one.fleet.devices[0]?.address ?? '',
          port: one.port,
          ca: one.scs.server.ca.certPem,
          servername: first.hostName ?? '',
          connectTimeoutMs: 5000,
        }),
        username: admin.username,
        password: admin.password,
        callTimeoutMs: 10_000,
      });
      try {
        assert.equal(await client.call(partialUnprovision()), 0);
      } finally {
        client.close();
      }
      // The device is In again and says hello with the renewed PID (a new window: at once).
      const [, second] = await one.scs.waitFinished(2, 30_000);
      assert.equal(second?.state, 'succeeded', `${second?.code ?? ''} ${second?.job.errorMessage ?? ''}`);
      assert.equal(second.job.pid, renewed);
      assert.equal(second.job.data.pskWasInUse, true);
      await one.fleet.waitFor('all-provisioned', { timeoutMs: 5000 });
      const again = await one.scs.store.devices.get(uuid);
      assert.equal(again?.state, 'provisioned');
      assert.notEqual(again.pid, renewed);
      assert.equal((await one.scs.store.psks.get(renewed))?.state, 'consumed');
      assert.equal((await one.scs.store.psks.get(again.pid ?? renewed))?.state, 'in_use');
      assert.deepEqual(await one.scs.store.pskBindings.boundTo(uuid), [again.pid]);
      assert.equal(one.fleet.devices[0]?.pid, again.pid);
    } finally {
      await done(one);
    }
  });
});

async function sendHello(port: number, bytes: Buffer, localAddress?: string): Promise<void> {
  const socket = net.connect({ host: '127.0.0.1', port, ...(localAddress === undefined ? {} : { localAddress }) });
  await once(socket, 'connect');
  socket.end(bytes);
  await once(socket, 'close');
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(25);
  }
}
