import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SimDevice } from '../../simulator/device/device.ts';
import { HelloSender } from '../../simulator/hello/sender.ts';
import { pooledKeyPairs } from '../../simulator/wsman/test-harness.ts';
import { generateProvisioningChain, type GeneratedChain } from '../../src/pki/generate-chain.ts';
import type { PkiFinished } from '../../src/pki/provisioner.ts';
import { storeChain } from '../../src/pki/service.ts';
import { MEBX, randomAddressBase, randomPort, startTestScs, type TestScs } from './harness.ts';

/**
 * Certificate-based setup end to end (docs/pki.md): the server (real store, hello listener,
 * provisioner) and simulated devices in PKI setup mode over real sockets: version 3 hellos,
 * mutual TLS, AddNextCertInChain, AdminSetup signature, profile steps, verification over TLS.
 */

const sha256 = (der: Buffer): string => createHash('sha256').update(der).digest('hex');

interface PkiDevice {
  readonly device: SimDevice;
  readonly sender: HelloSender;
  stop(): Promise<void>;
}

async function startPkiDevice(
  scs: TestScs,
  o: { address: string; port: number; uuid: string; domainName: string; userHashes: string[]; dnsSuffix?: string },
): Promise<PkiDevice> {
  const device = new SimDevice(
    {
      uuid: o.uuid,
      mebxPassword: MEBX,
      domainName: o.domainName,
      provisioningState: 'In',
      amtVersion: '11.8.50',
      pki: { userHashes: o.userHashes, ...(o.dnsSuffix === undefined ? {} : { dnsSuffix: o.dnsSuffix }) },
    },
    { keyPairProvider: pooledKeyPairs() },
  );
  await device.start({ host: o.address, tlsPort: o.port, httpPort: o.port + 1 });
  const sender = new HelloSender({
    scsHost: '127.0.0.1',
    scsPort: scs.helloPort,
    localAddress: o.address,
    timeFactor: 0.02,
    identity: () => device.helloIdentity(),
  });
  device.on('stateChanged', ({ to }) => {
    if (to !== 'In') sender.stop();
  });
  sender.start();
  return {
    device,
    sender,
    async stop() {
      sender.stop();
      await device.stop();
    },
  };
}

function waitFor<T>(scs: TestScs, event: 'finished' | 'refused', uuid: string, timeoutMs = 60_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} for ${uuid} within ${timeoutMs} ms`)), timeoutMs);
    const on = (e: { uuid: string }): void => {
      if (e.uuid !== uuid) return;
      clearTimeout(timer);
      scs.server.pki.off(event, on);
      resolve(e as T);
    };
    scs.server.pki.on(event, on);
  });
}

describe('certificate-based setup, server and simulated devices', () => {
  let scs: TestScs;
  let chain: GeneratedChain;
  const port = randomPort();
  const base = randomAddressBase().replace(/\.1$/, '');
  let n = 0;
  const nextDevice = (): { address: string; uuid: string } => {
    n++;
    return {
      address: `${base}.${n + 1}`,
      uuid: `6b2d0c4e-${String(n).padStart(4, '0')}-4a1b-8c2d-${String(n).padStart(12, '0')}`,
    };
  };

  before(async () => {
    scs = await startTestScs({ amtTlsPort: port, profile: { tls: true, timeSync: true } });
    chain = await generateProvisioningChain({ dnsSuffix: 'example.com' });
    await storeChain(scs.store, chain, { dnsSuffix: 'example.com', actor: 'e2e' });
  });
  after(() => scs.stop());

  it('provisions a device that trusts the root into admin control mode and verifies it over the issued TLS certificate', async () => {
    const id = nextDevice();
    const d = await startPkiDevice(scs, {
      ...id,
      port,
      domainName: 'example.com',
      userHashes: [sha256(chain.rootDer)],
    });
    try {
      const done = await waitFor<PkiFinished>(scs, 'finished', id.uuid);
      assert.equal(done.state, 'succeeded', `${done.code}: ${done.message}`);
      const snap = d.device.snapshot();
      assert.equal(snap.state, 'Post');
      assert.equal(snap.controlMode, 2);
      assert.equal(snap.provisioningMode, 1);
      assert.equal(snap.tls, 'cert');
      assert.equal(snap.pkiSetup, false);
      assert.match(snap.hostName, /^amt-/);
      const row = await scs.store.devices.get(id.uuid);
      assert.equal(row?.state, 'provisioned');
      assert.equal(row?.adminUser, 'admin');
      assert.notEqual(row?.certFingerprint, null);
      const actions = (await scs.store.audit.list({})).map((e) => e.action);
      for (const a of ['pki.setup_started', 'pki.key_use', 'pki.admin_setup', 'device.provisioned'])
        assert.ok(actions.includes(a), a);
      const key = chain.keyPkcs8.reveal().toString('base64');
      assert.ok(!scs.logs.some((l) => l.includes(key.slice(100, 160))), 'the provisioning key reached a log line');
    } finally {
      await d.stop();
    }
  });

  it('refuses a device whose trusted hashes match no stored root, naming the fix, without connecting to it', async () => {
    const id = nextDevice();
    const d = await startPkiDevice(scs, { ...id, port, domainName: 'example.com', userHashes: ['ab'.repeat(32)] });
    try {
      const r = await waitFor<{ code: string; message: string }>(scs, 'refused', id.uuid);
      assert.equal(r.code, 'SCS_PKI_NO_MATCHING_ROOT');
      assert.match(r.message, /MEBx/);
      assert.equal(d.device.snapshot().calls, 0);
      assert.equal(d.device.state, 'In');
    } finally {
      await d.stop();
    }
  });

  it('names a DNS suffix mismatch the device reveals by refusing the chain after the handshake', async () => {
    const id = nextDevice();
    const d = await startPkiDevice(scs, { ...id, port, domainName: 'corp.test', userHashes: [sha256(chain.rootDer)] });
    try {
      const done = await waitFor<PkiFinished>(scs, 'finished', id.uuid);
      assert.equal(done.state, 'failed');
      assert.equal(done.code, 'SCS_PKI_CERT_REFUSED');
      assert.match(done.message ?? '', /DNS suffix/);
      assert.equal(d.device.snapshot().lastPkiRefusal, 'dns-suffix');
      assert.equal(d.device.state, 'In');
      assert.equal((await scs.store.devices.get(id.uuid))?.state, 'failed');
    } finally {
      await d.stop();
    }
  });
});

describe('certificate-based setup with the device domain known from the profile', () => {
  let scs: TestScs;
  let chain: GeneratedChain;
  const port = randomPort();
  const address = randomAddressBase().replace(/\.1$/, '.2');

  before(async () => {
    scs = await startTestScs({ amtTlsPort: port, profile: { domainName: 'corp.test' } });
    chain = await generateProvisioningChain({ dnsSuffix: 'example.com' });
    await storeChain(scs.store, chain, { dnsSuffix: 'example.com', actor: 'e2e' });
  });
  after(() => scs.stop());

  it('refuses before connecting when the certificate is not for the profile domain', async () => {
    const uuid = '6b2d0c4e-9999-4a1b-8c2d-000000009999';
    const d = await startPkiDevice(scs, {
      address,
      port,
      uuid,
      domainName: 'corp.test',
      userHashes: [sha256(chain.rootDer)],
    });
    try {
      const r = await waitFor<{ code: string; message: string }>(scs, 'refused', uuid);
      assert.equal(r.code, 'SCS_PKI_DNS_SUFFIX_MISMATCH');
      assert.match(r.message, /corp\.test/);
      assert.equal(d.device.snapshot().calls, 0);
    } finally {
      await d.device.stop();
      d.sender.stop();
    }
  });
});
