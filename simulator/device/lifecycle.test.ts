import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import tls from 'node:tls';
import { AMT } from '@device-management-toolkit/wsman-messages';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import { DigestClient, type HttpResult } from '../http/digest-client.ts';
import { methodXml, pooledKeyPairs } from '../wsman/test-harness.ts';
import { parseXml, path } from '../wsman/xml.ts';
import { SimDevice, type SimDeviceEvents } from './device.ts';
import { issueFromCsr, makeCa, nullSignedCsr, type TestCa } from './test-pki.ts';
import { PSK_CIPHERS } from './tls.ts';

/** Commit semantics, TLS after commit, unprovisioning and reboots, over real sockets. */
const MEBX = 'P@ssw0rd';
const UUID = '2b7e1516-28ae-4d2a-9f7c-4b1a8c2e3d40';
const running: SimDevice[] = [];
after(async () => {
  await Promise.all(running.map((d) => d.stop()));
});

const amt = (): AMT.Messages => new AMT.Messages();

function value(r: HttpResult, ...names: string[]): string | undefined {
  return path(parseXml(r.body), 'Body', ...names)?.text;
}

function rv(r: HttpResult, method: string): number {
  return Number(value(r, `${method}_OUTPUT`, 'ReturnValue'));
}

function pskClient(port: number, pid: string, pps: string, username = 'admin', password = MEBX): DigestClient {
  return new DigestClient({
    connect: () =>
      tls.connect({
        host: '127.0.0.1',
        port,
        ciphers: PSK_CIPHERS.join(':'),
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.2',
        checkServerIdentity: () => undefined,
        pskCallback: () => ({ identity: pid, psk: Buffer.from(pps, 'ascii') }),
      }),
    username,
    password,
  });
}

function certClient(port: number, ca: TestCa, username: string, password: string): DigestClient {
  return new DigestClient({
    connect: () =>
      tls.connect({ host: '127.0.0.1', port, ca: ca.pem, checkServerIdentity: () => undefined, minVersion: 'TLSv1.2' }),
    username,
    password,
  });
}

/** A TLS session from a completed PSK handshake (a ticket, if the device hands one out). */
function pskSession(port: number, pid: string, pps: string): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      ciphers: PSK_CIPHERS.join(':'),
      maxVersion: 'TLSv1.2',
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ identity: pid, psk: Buffer.from(pps, 'ascii') }),
    });
    s.once('secureConnect', () => {
      // A TLS 1.2 ticket arrives with the handshake; give it a turn to be read.
      setImmediate(() => {
        resolve(s.getSession());
        s.destroy();
      });
    });
    s.once('error', reject);
  });
}

function pskHandshake(port: number, pid: string, pps: string, session?: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      ...(session === undefined ? {} : { session }),
      ciphers: PSK_CIPHERS.join(':'),
      maxVersion: 'TLSv1.2',
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ identity: pid, psk: Buffer.from(pps, 'ascii') }),
    });
    s.once('secureConnect', () => {
      s.destroy();
      resolve('ok');
    });
    s.once('error', (e: Error & { code?: string }) => resolve(e.code ?? e.message));
  });
}

async function startDevice() {
  const pid = generatePid();
  const pps = generatePps();
  const device = new SimDevice(
    { uuid: UUID, pid, pps, mebxPassword: MEBX, hostName: 'factory' },
    { keyPairProvider: pooledKeyPairs() },
  );
  running.push(device);
  const ports = await device.start({ tlsPort: 0, httpPort: 0 });
  const events: Array<[keyof SimDeviceEvents, unknown]> = [];
  for (const name of ['provisioned', 'unprovisioned', 'rebooted', 'stateChanged'] as const) {
    device.on(name, (e: unknown) => events.push([name, e]));
  }
  return { device, ports, pid, pps, events };
}

const digestHa1 = (user: string, realm: string, password: string): Buffer =>
  createHash('md5').update(`${user}:${realm}:${password}`).digest();

/** §6 steps 6: key pair, PKCS#10 signed by the device, certificate, credential context, TLS on. */
async function configureTls(c: DigestClient, ca: TestCa): Promise<void> {
  const gen = await c.post(amt().PublicKeyManagementService.GenerateKeyPair({ KeyAlgorithm: 0, KeyLength: 2048 }));
  assert.equal(rv(gen, 'GenerateKeyPair'), 0);
  const keyId = value(gen, 'GenerateKeyPair_OUTPUT', 'KeyPair', 'ReferenceParameters', 'SelectorSet', 'Selector') ?? '';
  const e = await c.post(amt().PublicPrivateKeyPair.Enumerate());
  const pull = await c.post(amt().PublicPrivateKeyPair.Pull(value(e, 'EnumerateResponse', 'EnumerationContext') ?? ''));
  const derKey = value(pull, 'PullResponse', 'Items', 'AMT_PublicPrivateKeyPair', 'DERKey') ?? '';
  const csr = await c.post(
    amt().PublicKeyManagementService.GeneratePKCS10RequestEx({
      KeyPair: keyId,
      SigningAlgorithm: 1,
      NullSignedCertificateRequest: await nullSignedCsr(derKey, ca.keys.privateKey),
    }),
  );
  assert.equal(rv(csr, 'GeneratePKCS10RequestEx'), 0);
  const signed = value(csr, 'GeneratePKCS10RequestEx_OUTPUT', 'SignedCertificateRequest') ?? '';
  const add = await c.post(
    amt().PublicKeyManagementService.AddCertificate({ CertificateBlob: await issueFromCsr(ca, signed) }),
  );
  assert.equal(rv(add, 'AddCertificate'), 0);
  const handle = value(
    add,
    'AddCertificate_OUTPUT',
    'CreatedCertificate',
    'ReferenceParameters',
    'SelectorSet',
    'Selector',
  );
  assert.equal((await c.post(amt().TLSCredentialContext.Create(handle ?? ''))).status, 200);
  const put = await c.post(
    amt().TLSSettingData.Put({
      ElementName: 'Intel(r) AMT 802.3 TLS Settings',
      InstanceID: 'Intel(r) AMT 802.3 TLS Settings',
      MutualAuthentication: false,
      Enabled: true,
      AcceptNonSecureConnections: false,
    } as never),
  );
  assert.equal(put.status, 200);
}

describe('commit', () => {
  it('keeps everything pending until CommitChanges, then serves TLS with the issued certificate and the new admin', async () => {
    const { device, ports, pid, pps, events } = await startDevice();
    const ca = await makeCa();
    const c = pskClient(ports.tlsPort, pid, pps);
    const realm = value(await c.post(amt().GeneralSettings.Get()), 'AMT_GeneralSettings', 'DigestRealm') ?? '';
    const newPassword = 'Scs!Adm1nPass';
    const setAdmin = await c.post(
      amt().AuthorizationService.SetAdminACLEntryEx(
        'scsadmin',
        digestHa1('scsadmin', realm, newPassword).toString('base64'),
      ),
    );
    assert.equal(rv(setAdmin, 'SetAdminAclEntryEx'), 0);
    assert.equal(
      (await c.post(amt().GeneralSettings.Put({ HostName: 'pc-0042', DomainName: 'corp.example' }))).status,
      200,
    );
    const low = await c.post(amt().TimeSynchronizationService.GetLowAccuracyTimeSynch());
    const ta0 = Number(value(low, 'GetLowAccuracyTimeSynch_OUTPUT', 'Ta0'));
    const now = Math.floor(Date.now() / 1000);
    assert.equal(
      rv(
        await c.post(amt().TimeSynchronizationService.SetHighAccuracyTimeSynch(ta0, now, now)),
        'SetHighAccuracyTimeSynch',
      ),
      0,
    );
    await configureTls(c, ca);
    const newPid = generatePid();
    const newPps = generatePps();
    const setPsk = await c.post(
      methodXml('AMT_SetupAndConfigurationService', 'SetTLSPSK', { PID: newPid, PPS: newPps }),
    );
    assert.equal(rv(setPsk, 'SetTLSPSK'), 0);

    // Still In, still the old admin, still PSK: nothing above is committed yet.
    const pending = pskClient(ports.tlsPort, pid, pps, 'scsadmin', newPassword);
    assert.equal((await pending.post(amt().GeneralSettings.Get())).status, 401);
    pending.close();
    assert.equal(device.snapshot().hostName, 'factory');
    assert.equal(device.state, 'In');

    const commit = await c.post(amt().SetupAndConfigurationService.CommitChanges());
    assert.equal(rv(commit, 'CommitChanges'), 0);
    assert.equal(commit.headers.connection, 'close');
    c.close();
    assert.equal(device.state, 'Post');
    assert.deepEqual(
      events.find(([n]) => n === 'provisioned'),
      ['provisioned', { uuid: UUID, pid: newPid, tls: true }],
    );

    // TLS now: PSK no longer accepted, the certificate chains to the CA, Digest as the new admin.
    assert.notEqual(await pskHandshake(ports.tlsPort, pid, pps), 'ok');
    assert.notEqual(await pskHandshake(ports.tlsPort, newPid, newPps), 'ok');
    const verify = certClient(ports.tlsPort, ca, 'scsadmin', newPassword);
    const state = await verify.post(amt().SetupAndConfigurationService.Get());
    assert.equal(state.status, 200);
    assert.equal(value(state, 'AMT_SetupAndConfigurationService', 'ProvisioningState'), '2');
    const gs = await verify.post(amt().GeneralSettings.Get());
    assert.equal(value(gs, 'AMT_GeneralSettings', 'HostName'), 'pc-0042');
    verify.close();
    const oldAdmin = certClient(ports.tlsPort, ca, 'admin', MEBX);
    assert.equal((await oldAdmin.post(amt().GeneralSettings.Get())).status, 401);
    oldAdmin.close();

    // 16992 takes no traffic once TLS is on without AcceptNonSecureConnections.
    const closed = await new Promise<string>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: ports.httpPort }, () => s.write('POST /wsman HTTP/1.1\r\n\r\n'));
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('close', () => resolve(got));
      s.on('error', () => undefined);
    });
    assert.equal(closed, '');

    const snap = device.snapshot();
    assert.equal(snap.tls, 'cert');
    assert.equal(snap.pid, newPid);
    assert.equal(snap.adminUser, 'scsadmin');
    const json = JSON.stringify(snap);
    for (const secret of [pps, newPps, MEBX, newPassword, digestHa1('scsadmin', realm, newPassword).toString('hex')]) {
      assert.ok(!json.includes(secret), 'snapshot leaks a secret');
    }
  });

  it('without TLS keeps serving TLS-PSK after commit, with the PSK from SetTLSPSK only', async () => {
    const { device, ports, pid, pps } = await startDevice();
    const session = await pskSession(ports.tlsPort, pid, pps);
    const c = pskClient(ports.tlsPort, pid, pps);
    const newPid = generatePid();
    const newPps = generatePps();
    await c.post(methodXml('AMT_SetupAndConfigurationService', 'SetTLSPSK', { PID: newPid, PPS: newPps }));
    assert.equal(rv(await c.post(amt().SetupAndConfigurationService.CommitChanges()), 'CommitChanges'), 0);
    c.close();
    assert.equal(device.snapshot().tls, 'psk');
    assert.equal(await pskHandshake(ports.tlsPort, pid, pps), 'ERR_SSL_TLSV1_ALERT_UNKNOWN_PSK_IDENTITY');
    // Nor can a session from before the commit be resumed past the new PSK.
    assert.equal(await pskHandshake(ports.tlsPort, pid, pps, session), 'ERR_SSL_TLSV1_ALERT_UNKNOWN_PSK_IDENTITY');
    assert.equal(await pskHandshake(ports.tlsPort, newPid, newPps), 'ok');
    const again = pskClient(ports.tlsPort, newPid, newPps);
    const r = await again.post(amt().SetupAndConfigurationService.Get());
    again.close();
    assert.equal(value(r, 'AMT_SetupAndConfigurationService', 'ProvisioningState'), '2');
  });

  it('loses pending settings, and only those, when the device reboots before commit', async () => {
    const { device, ports, pid, pps, events } = await startDevice();
    const c = pskClient(ports.tlsPort, pid, pps);
    assert.equal((await c.post(amt().GeneralSettings.Put({ HostName: 'lost' }))).status, 200);
    await c.post(
      methodXml('AMT_SetupAndConfigurationService', 'SetTLSPSK', { PID: generatePid(), PPS: generatePps() }),
    );
    device.reboot();
    c.close();
    assert.deepEqual(events.at(-1), ['rebooted', { uuid: UUID, reason: 'api' }]);
    assert.equal(device.state, 'In');
    const after = pskClient(ports.tlsPort, pid, pps);
    const gs = await after.post(amt().GeneralSettings.Get());
    after.close();
    assert.equal(value(gs, 'AMT_GeneralSettings', 'HostName'), 'factory');
    assert.equal(device.exportSetup().pid, pid);
  });
});

describe('unprovision', () => {
  it('partially: Post -> In with the PSK from SetTLSPSK; admin and names kept; hellos may resume', async () => {
    const { device, ports, pid, pps, events } = await startDevice();
    const c = pskClient(ports.tlsPort, pid, pps);
    const newPid = generatePid();
    const newPps = generatePps();
    await c.post(methodXml('AMT_SetupAndConfigurationService', 'SetTLSPSK', { PID: newPid, PPS: newPps }));
    await c.post(amt().GeneralSettings.Put({ HostName: 'kept' }));
    await c.post(amt().SetupAndConfigurationService.CommitChanges());
    c.close();
    const post = pskClient(ports.tlsPort, newPid, newPps);
    const r = await post.post(methodXml('AMT_SetupAndConfigurationService', 'PartialUnprovision', {}));
    post.close();
    assert.equal(rv(r, 'PartialUnprovision'), 0);
    assert.equal(device.state, 'In');
    assert.equal(device.currentPid, newPid);
    assert.deepEqual(
      events.find(([n]) => n === 'unprovisioned'),
      ['unprovisioned', { uuid: UUID, partial: true, state: 'In', pid: newPid }],
    );
    assert.equal(device.snapshot().hostName, 'kept');
    assert.ok(device.snapshot().provisioningWindowEndsAt);
    assert.equal(await pskHandshake(ports.tlsPort, newPid, newPps), 'ok');
  });

  it('fully: back to factory Pre, no PSK (every identity unknown), until a PSK is loaded again', async () => {
    const { device, ports, pid, pps, events } = await startDevice();
    const c = pskClient(ports.tlsPort, pid, pps);
    const r = await c.post(amt().SetupAndConfigurationService.Unprovision(1));
    c.close();
    assert.equal(rv(r, 'Unprovision'), 0);
    assert.equal(device.state, 'Pre');
    assert.equal(device.snapshot().pid, null);
    assert.ok(events.some(([n, e]) => n === 'unprovisioned' && (e as { partial: boolean }).partial === false));
    assert.equal(await pskHandshake(ports.tlsPort, pid, pps), 'ERR_SSL_TLSV1_ALERT_UNKNOWN_PSK_IDENTITY');
    const pid2 = generatePid();
    const pps2 = generatePps();
    device.loadPsk(pid2, pps2);
    assert.equal(device.state, 'In');
    assert.equal(await pskHandshake(ports.tlsPort, pid2, pps2), 'ok');
  });
});

describe('exportSetup', () => {
  it('restores a provisioned TLS device with its realm, admin and certificate', async () => {
    const { device, ports, pid, pps } = await startDevice();
    const ca = await makeCa();
    const c = pskClient(ports.tlsPort, pid, pps);
    await c.post(
      amt().AuthorizationService.SetAdminACLEntryEx(
        'ops',
        digestHa1('ops', device.digestRealm, 'Op$Passw0rd').toString('hex'),
      ),
    );
    await configureTls(c, ca);
    await c.post(amt().SetupAndConfigurationService.CommitChanges());
    c.close();
    const setup = device.exportSetup();
    await device.stop();
    const restored = new SimDevice(setup);
    running.push(restored);
    const p = await restored.start({ tlsPort: 0, httpPort: 0 });
    assert.equal(restored.state, 'Post');
    assert.equal(restored.digestRealm, device.digestRealm);
    const v = certClient(p.tlsPort, ca, 'ops', 'Op$Passw0rd');
    assert.equal((await v.post(amt().SetupAndConfigurationService.Get())).status, 200);
    v.close();
  });
});
