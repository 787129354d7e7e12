import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import tls from 'node:tls';
import { AMT } from '@device-management-toolkit/wsman-messages';
import { isScsError } from '../../src/errors.ts';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import { DigestClient } from '../http/digest-client.ts';
import { methodXml } from '../wsman/test-harness.ts';
import { parseXml, path } from '../wsman/xml.ts';
import { SimDevice, type DeviceFaults } from './device.ts';
import { PSK_CIPHERS } from './tls.ts';

/**
 * Each fault hook the fleet sets, observed from outside. The timing checks are lower bounds
 * only (a reply cannot come before its injected delay); nothing asserts that anything is fast.
 */
const MEBX = 'P@ssw0rd';
const running: SimDevice[] = [];
after(async () => {
  await Promise.all(running.map((d) => d.stop()));
});

async function startDevice(faults: DeviceFaults) {
  const pid = generatePid();
  const pps = generatePps();
  const device = new SimDevice(
    { uuid: '0f0e0d0c-0b0a-4908-8706-050403020100', pid, pps, mebxPassword: MEBX, hostName: 'before' },
    { faults },
  );
  running.push(device);
  const ports = await device.start({ tlsPort: 0, httpPort: 0 });
  const client = new DigestClient({
    connect: () =>
      tls.connect({
        host: '127.0.0.1',
        port: ports.tlsPort,
        ciphers: PSK_CIPHERS.join(':'),
        maxVersion: 'TLSv1.2',
        checkServerIdentity: () => undefined,
        pskCallback: () => ({ identity: pid, psk: Buffer.from(pps, 'ascii') }),
      }),
    username: 'admin',
    password: MEBX,
  });
  return { device, ports, pid, pps, client };
}

const amt = (): AMT.Messages => new AMT.Messages();
const returnValue = (body: string, method: string): number =>
  Number(path(parseXml(body), 'Body', `${method}_OUTPUT`, 'ReturnValue')?.text);

describe('device fault hooks', () => {
  it('latencyMs delays every reply, the 401 included', async () => {
    const { client } = await startDevice({ latencyMs: 150 });
    const t0 = performance.now();
    const r = await client.post(amt().GeneralSettings.Get()); // a 401, then the answer
    const elapsed = performance.now() - t0;
    client.close();
    assert.equal(r.status, 200);
    assert.ok(elapsed >= 2 * 150 - 5, `two replies took ${elapsed.toFixed(0)} ms`);
  });

  it('dropAtCall destroys the socket on the K-th WS-Man call, without a reply, and only that one', async () => {
    const { device, client } = await startDevice({ dropAtCall: 2 });
    assert.equal((await client.post(amt().GeneralSettings.Get())).status, 200);
    await assert.rejects(client.post(amt().GeneralSettings.Get()), /socket hang up|ECONNRESET/);
    assert.equal((await client.post(amt().GeneralSettings.Get())).status, 200);
    client.close();
    assert.equal(device.snapshot().calls, 3);
  });

  it('methodStatus answers the method with the status, without running it, for `times` calls', async () => {
    const { device, client } = await startDevice({ methodStatus: { method: 'SetTLSPSK', status: 1, times: 2 } });
    const newPid = generatePid();
    const call = () =>
      client.post(methodXml('AMT_SetupAndConfigurationService', 'SetTLSPSK', { PID: newPid, PPS: generatePps() }));
    assert.equal(returnValue((await call()).body, 'SetTLSPSK'), 1);
    assert.equal(returnValue((await call()).body, 'SetTLSPSK'), 1);
    assert.equal(returnValue((await call()).body, 'SetTLSPSK'), 0);
    assert.equal(
      returnValue((await client.post(amt().SetupAndConfigurationService.CommitChanges())).body, 'CommitChanges'),
      0,
    );
    client.close();
    assert.equal(device.currentPid, newPid);
  });

  it('rebootBeforeCommit drops the session at CommitChanges and loses the pending settings, once', async () => {
    const { device, client } = await startDevice({ rebootBeforeCommit: true });
    const reboots: string[] = [];
    device.on('rebooted', (e) => reboots.push(e.reason));
    assert.equal((await client.post(amt().GeneralSettings.Put({ HostName: 'pending' }))).status, 200);
    await assert.rejects(client.post(amt().SetupAndConfigurationService.CommitChanges()), /socket hang up|ECONNRESET/);
    assert.deepEqual(reboots, ['fault']);
    assert.equal(device.state, 'In');
    assert.equal(device.snapshot().hostName, 'before');
    // The hook fires once: a second attempt commits.
    assert.equal((await client.post(amt().GeneralSettings.Put({ HostName: 'second' }))).status, 200);
    assert.equal(
      returnValue((await client.post(amt().SetupAndConfigurationService.CommitChanges())).body, 'CommitChanges'),
      0,
    );
    client.close();
    assert.equal(device.state, 'Post');
    assert.equal(device.snapshot().hostName, 'second');
  });

  it('rebootAfterCommit commits, then drops the session without a reply (Post kept)', async () => {
    const { device, client } = await startDevice({ rebootAfterCommit: true });
    const provisioned: string[] = [];
    device.on('provisioned', (e) => provisioned.push(e.uuid));
    assert.equal((await client.post(amt().GeneralSettings.Put({ HostName: 'committed' }))).status, 200);
    await assert.rejects(client.post(amt().SetupAndConfigurationService.CommitChanges()), /socket hang up|ECONNRESET/);
    client.close();
    assert.equal(device.state, 'Post');
    assert.equal(device.snapshot().hostName, 'committed');
    assert.equal(provisioned.length, 1);
  });

  it('stallHandshakeMs accepts TCP at once but holds the TLS handshake', async () => {
    const { ports, pid, pps } = await startDevice({ stallHandshakeMs: 200 });
    const t0 = performance.now();
    const timings = await new Promise<{ connect: number; secure: number }>((resolve, reject) => {
      let connect = -1;
      const s = tls.connect({
        host: '127.0.0.1',
        port: ports.tlsPort,
        ciphers: PSK_CIPHERS.join(':'),
        maxVersion: 'TLSv1.2',
        checkServerIdentity: () => undefined,
        pskCallback: () => ({ identity: pid, psk: Buffer.from(pps, 'ascii') }),
      });
      s.once('connect', () => (connect = performance.now() - t0));
      s.once('secureConnect', () => {
        resolve({ connect, secure: performance.now() - t0 });
        s.destroy();
      });
      s.once('error', reject);
    });
    assert.ok(timings.connect >= 0 && timings.connect < timings.secure);
    assert.ok(timings.secure >= 195, `handshake finished after ${timings.secure.toFixed(0)} ms`);
  });

  it('refuses malformed fault settings', () => {
    const d = new SimDevice({ uuid: '0f0e0d0c-0b0a-4908-8706-050403020100' });
    assert.throws(
      () => d.setFaults({ dropAtCall: 0 }),
      (e) => isScsError(e, 'SCS_SIM_CONFIG_INVALID'),
    );
    assert.throws(
      () => d.setFaults({ latencyMs: -1 }),
      (e) => isScsError(e, 'SCS_SIM_CONFIG_INVALID'),
    );
    assert.throws(
      () => d.setFaults({ methodStatus: { method: '', status: 1 } }),
      (e) => isScsError(e, 'SCS_SIM_CONFIG_INVALID'),
    );
  });
});
