import assert from 'node:assert/strict';
import { createPublicKey, webcrypto } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { SimDevice } from '../../simulator/device/device.ts';
import { createAmtClient, type AmtClient } from '../../src/amt/client.ts';
import { createPskTransport, createTlsTransport } from '../../src/amt/connect.ts';
import { isAmtError } from '../../src/amt/wsman/fault.ts';
import { setAdminAclEntryEx } from '../../src/amt/wsman/ops/authorization.ts';
import { getGeneralSettings, putGeneralSettings } from '../../src/amt/wsman/ops/general-settings.ts';
import { identify } from '../../src/amt/wsman/ops/identify.ts';
import {
  addCertificate,
  generateKeyPair,
  generatePkcs10RequestEx,
  getPublicPrivateKeyPair,
} from '../../src/amt/wsman/ops/public-key.ts';
import {
  commitChanges,
  getSetupAndConfigurationService,
  getUuid,
  ProvisioningState,
  setMEBxPassword,
  setTlsPsk,
} from '../../src/amt/wsman/ops/setup-and-configuration.ts';
import { enumerateSoftwareIdentity } from '../../src/amt/wsman/ops/software-identity.ts';
import {
  epochSeconds,
  getLowAccuracyTimeSynch,
  setHighAccuracyTimeSynch,
} from '../../src/amt/wsman/ops/time-synchronization.ts';
import { createTlsCredentialContext, getTlsSettingData, putTlsSettingData } from '../../src/amt/wsman/ops/tls.ts';
import { createCaMaterial, loadCa, type Ca } from '../../src/crypto/ca.ts';
import { isScsError } from '../../src/errors.ts';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import type { Pid } from '../../src/psk/pid.ts';
import type { Pps } from '../../src/psk/pps.ts';
import { Secret } from '../../src/secret.ts';

/**
 * The server's AMT client against the independently written device simulator, over real
 * sockets: TLS-PSK + Digest + WS-Man through the whole §6 sequence, then certificate TLS with
 * the new admin credentials (§6 step 9).
 */

x509.cryptoProvider.set(webcrypto);

const MEBX = 'Mebx-Pw0rd!';
const NEW_ADMIN = 'N3w-Admin!pw';
const HOST = 'amt-e2e';
const DOMAIN = 'example.test';

/**
 * The "null-signed" PKCS#10 an SCS hands to GeneratePKCS10RequestEx: the device's public key
 * (AMT_PublicPrivateKeyPair.DERKey, a PKCS#1 RSAPublicKey) in a request signed by a throwaway
 * key; the device re-signs it with its own key.
 */
async function nullSignedRequest(derKey: string, subject: string): Promise<string> {
  const alg = {
    name: 'RSASSA-PKCS1-v1_5',
    hash: 'SHA-256',
    publicExponent: new Uint8Array([1, 0, 1]),
    modulusLength: 2048,
  };
  const throwaway = await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
  const spki = createPublicKey({ key: Buffer.from(derKey, 'base64'), format: 'der', type: 'pkcs1' }).export({
    type: 'spki',
    format: 'der',
  });
  const publicKey = await webcrypto.subtle.importKey('spki', spki, { name: alg.name, hash: alg.hash }, true, [
    'verify',
  ]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subject,
    keys: { publicKey, privateKey: throwaway.privateKey },
    signingAlgorithm: alg,
  });
  return Buffer.from(csr.rawData).toString('base64');
}

function fresh(): { uuid: string; pid: Pid; pps: Pps } {
  const hex = webcrypto.getRandomValues(new Uint8Array(16));
  const h = Buffer.from(hex).toString('hex');
  return {
    uuid: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`,
    pid: generatePid(),
    pps: generatePps(),
  };
}

async function startDevice(
  faults = {},
  tls?: { minVersion: 'TLSv1' | 'TLSv1.2'; maxVersion: 'TLSv1' | 'TLSv1.2' },
): Promise<{ device: SimDevice; port: number; id: ReturnType<typeof fresh> }> {
  const id = fresh();
  const device = new SimDevice(
    { uuid: id.uuid, pid: id.pid, pps: id.pps, mebxPassword: MEBX },
    { faults, ...(tls === undefined ? {} : { tls }) },
  );
  const { tlsPort } = await device.start({ host: '127.0.0.1', tlsPort: 0, httpPort: 0 });
  return { device, port: tlsPort, id };
}

function pskClient(
  port: number,
  pid: Pid,
  pps: Pps,
  opts: { password?: string; callTimeoutMs?: number; connectTimeoutMs?: number } = {},
): AmtClient {
  return createAmtClient({
    transport: createPskTransport({
      host: '127.0.0.1',
      port,
      pid,
      pps: new Secret(pps),
      connectTimeoutMs: opts.connectTimeoutMs ?? 5_000,
    }),
    username: 'admin',
    password: new Secret(opts.password ?? MEBX),
    callTimeoutMs: opts.callTimeoutMs ?? 15_000,
  });
}

describe('AMT client <-> simulated device: the §6 PSK configuration sequence', () => {
  let device: SimDevice;
  let port = 0;
  let id: ReturnType<typeof fresh>;
  let ca: Ca;
  let client: AmtClient;
  const provisioned: unknown[] = [];

  before(async () => {
    ({ device, port, id } = await startDevice());
    device.on('provisioned', (e) => provisioned.push(e));
    ca = await loadCa(await createCaMaterial('amt-scs e2e CA'));
    client = pskClient(port, id.pid, id.pps);
  });
  after(async () => {
    client.close();
    await device.stop();
  });

  let realm = '';
  let settingsInstance: Awaited<ReturnType<ReturnType<typeof getGeneralSettings>['run']>>['instance'];
  const newPid = generatePid();
  const newPps = generatePps();

  it('1. identifies the device and reads its facts over TLS-PSK + Digest', async () => {
    const who = await client.call(identify());
    assert.equal(who.productVendor, 'Intel Corporation');
    const settings = await client.call(getGeneralSettings());
    assert.match(settings.digestRealm, /^Digest:[0-9A-F]{32}$/);
    realm = settings.digestRealm;
    settingsInstance = settings.instance;
    const setup = await client.call(getSetupAndConfigurationService());
    assert.equal(setup.provisioningState, ProvisioningState.In);
    const software = await client.call(enumerateSoftwareIdentity());
    assert.equal(software.amtVersion, '6.2.0');
    assert.ok(software.items.length > 1);
    assert.equal((await client.call(getUuid())).uuid, id.uuid);
  });

  it('2-4. sets the admin ACL entry, the MEBx password and the clock', async () => {
    assert.equal(
      await client.call(setAdminAclEntryEx({ username: 'admin', realm, password: new Secret(NEW_ADMIN) })),
      0,
    );
    assert.equal(await client.call(setMEBxPassword(new Secret('Mebx-N3w-pw!'))), 0);
    const { ta0 } = await client.call(getLowAccuracyTimeSynch());
    const tm1 = epochSeconds();
    assert.ok(Math.abs(ta0 - tm1) < 60);
    assert.equal(await client.call(setHighAccuracyTimeSynch({ ta0, tm1, tm2: epochSeconds() })), 0);
  });

  it('5. puts the host and domain name into AMT_GeneralSettings', async () => {
    await client.call(putGeneralSettings(settingsInstance, { hostName: HOST, domainName: DOMAIN }));
    const after = await client.call(getGeneralSettings());
    // Pending until CommitChanges on a real device; either way the Put was accepted.
    assert.equal(after.digestRealm, realm);
  });

  it('6. has the device make a key, signs its request with the SCS CA and installs TLS', async () => {
    const key = await client.call(generateKeyPair());
    const { derKey } = await client.call(getPublicPrivateKeyPair(key.instanceId));
    const nullSigned = await nullSignedRequest(derKey, `CN=${HOST}.${DOMAIN}`);
    const { signedCertificateRequest } = await client.call(
      generatePkcs10RequestEx({ keyPairInstanceId: key.instanceId, nullSignedCertificateRequest: nullSigned }),
    );
    const issued = await ca.issueDeviceCertificate(Buffer.from(signedCertificateRequest, 'base64'), {
      dnsName: `${HOST}.${DOMAIN}`,
      uuid: id.uuid,
    });
    const cert = await client.call(addCertificate(issued.der.toString('base64')));
    await client.call(createTlsCredentialContext(cert.instanceId));
    const tls = await client.call(getTlsSettingData());
    await client.call(putTlsSettingData(tls.instance, { enabled: true }));
  });

  it('7-8. gives the device its new PSK and commits', async () => {
    assert.equal(await client.call(setTlsPsk(newPid, new Secret(newPps))), 0);
    assert.equal(await client.call(commitChanges()), 0);
    assert.equal(provisioned.length, 1);
    assert.equal(device.state, 'Post');
    assert.equal(device.currentPid, newPid);
  });

  it('answered one Digest challenge for the whole sequence and kept the connection alive', () => {
    const stats = client.stats();
    assert.equal(stats.challenges, 1);
    // The anonymous Identify opens the first connection; the simulator may close it with its 401
    // (§4 allows a retry on a new connection); every later call reuses the second one.
    assert.ok(stats.connections <= 2, `${stats.connections} connections`);
    assert.ok(stats.exchanges >= 17, `${stats.exchanges} exchanges`);
  });

  it('9. reconnects over TLS with the issued certificate and the new admin password: state Post', async () => {
    const verify = createAmtClient({
      transport: createTlsTransport({
        host: '127.0.0.1',
        port,
        ca: ca.certPem,
        servername: `${HOST}.${DOMAIN}`,
        connectTimeoutMs: 5_000,
      }),
      username: 'admin',
      password: new Secret(NEW_ADMIN),
      callTimeoutMs: 15_000,
    });
    try {
      const setup = await verify.call(getSetupAndConfigurationService());
      assert.equal(setup.provisioningState, ProvisioningState.Post);
      const settings = await verify.call(getGeneralSettings());
      assert.equal(settings.hostName, HOST);
      assert.equal(settings.domainName, DOMAIN);
    } finally {
      verify.close();
    }
  });

  it('refuses the old admin password after commit with SCS_AMT_AUTH_FAILED', async () => {
    const old = createAmtClient({
      transport: createTlsTransport({
        host: '127.0.0.1',
        port,
        ca: ca.certPem,
        servername: `${HOST}.${DOMAIN}`,
        connectTimeoutMs: 5_000,
      }),
      username: 'admin',
      password: new Secret(MEBX),
      callTimeoutMs: 15_000,
    });
    try {
      await assert.rejects(old.call(getSetupAndConfigurationService()), (e) => isScsError(e, 'SCS_AMT_AUTH_FAILED'));
    } finally {
      old.close();
    }
  });

  it('refuses a certificate check against another CA with SCS_TLS_CERT_REJECTED', async () => {
    const other = await loadCa(await createCaMaterial('someone else'));
    const c = createAmtClient({
      transport: createTlsTransport({
        host: '127.0.0.1',
        port,
        ca: other.certPem,
        servername: `${HOST}.${DOMAIN}`,
        connectTimeoutMs: 5_000,
      }),
      username: 'admin',
      password: new Secret(NEW_ADMIN),
      callTimeoutMs: 15_000,
    });
    try {
      await assert.rejects(c.call(getSetupAndConfigurationService()), (e) => isScsError(e, 'SCS_TLS_CERT_REJECTED'));
    } finally {
      c.close();
    }
  });
});

describe('AMT client <-> simulated device: TLS versions', () => {
  for (const version of ['TLSv1', 'TLSv1.2'] as const) {
    it(`configures over TLS-PSK with a device that speaks only ${version}`, async () => {
      const { device, port, id } = await startDevice({}, { minVersion: version, maxVersion: version });
      const client = pskClient(port, id.pid, id.pps);
      try {
        assert.equal((await client.call(getSetupAndConfigurationService())).provisioningState, ProvisioningState.In);
        assert.equal(await client.call(setTlsPsk(generatePid(), new Secret(generatePps()))), 0);
        assert.equal(await client.call(commitChanges()), 0);
        assert.equal(device.state, 'Post');
      } finally {
        client.close();
        await device.stop();
      }
    });
  }
});

describe('AMT client <-> simulated device: failures keep their codes', () => {
  it('tells a wrong PPS, an unknown PID and a wrong MEBx password apart', async () => {
    const { device, port, id } = await startDevice();
    try {
      const wrongKey = pskClient(port, id.pid, generatePps());
      await assert.rejects(wrongKey.call(getGeneralSettings()), (e) => isScsError(e, 'SCS_TLS_BAD_KEY'));
      wrongKey.close();
      const unknown = pskClient(port, generatePid(), id.pps);
      await assert.rejects(unknown.call(getGeneralSettings()), (e) => isScsError(e, 'SCS_TLS_UNKNOWN_IDENTITY'));
      unknown.close();
      const wrongPassword = pskClient(port, id.pid, id.pps, { password: 'Not-The-Mebx1' });
      await assert.rejects(wrongPassword.call(getGeneralSettings()), (e) => isScsError(e, 'SCS_AMT_AUTH_FAILED'));
      wrongPassword.close();
    } finally {
      await device.stop();
    }
  });

  it('surfaces a forced ReturnValue as AmtError and a dropped call as SCS_AMT_CONNECTION_LOST', async () => {
    const { device, port, id } = await startDevice({
      methodStatus: { method: 'SetTLSPSK', status: 1, times: 1 },
      dropAtCall: 3,
    });
    const client = pskClient(port, id.pid, id.pps);
    try {
      await assert.rejects(
        client.call(setTlsPsk(generatePid(), new Secret(generatePps()))),
        (e) => isAmtError(e, 1) && e.status === 'INTERNAL_ERROR',
      );
      await client.call(getGeneralSettings());
      await assert.rejects(client.call(commitChanges()), (e) => isScsError(e, 'SCS_AMT_CONNECTION_LOST'));
      assert.equal(device.state, 'In');
      // The next call reconnects on its own.
      assert.equal((await client.call(getSetupAndConfigurationService())).provisioningState, ProvisioningState.In);
    } finally {
      client.close();
      await device.stop();
    }
  });

  it('times out a slow device per call, and a stalled handshake per connect', async () => {
    const slow = await startDevice({ latencyMs: 400 });
    const client = pskClient(slow.port, slow.id.pid, slow.id.pps, { callTimeoutMs: 150 });
    try {
      await assert.rejects(client.call(getGeneralSettings()), (e) => isScsError(e, 'SCS_AMT_TIMEOUT'));
    } finally {
      client.close();
      await slow.device.stop();
    }
    const stalled = await startDevice({ stallHandshakeMs: 2_000 });
    const c2 = pskClient(stalled.port, stalled.id.pid, stalled.id.pps, { connectTimeoutMs: 150 });
    try {
      await assert.rejects(c2.call(getGeneralSettings()), (e) => isScsError(e, 'SCS_TLS_TIMEOUT'));
    } finally {
      c2.close();
      await stalled.device.stop();
    }
  });
});
