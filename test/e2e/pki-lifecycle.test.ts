import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SimDevice } from '../../simulator/device/device.ts';
import { HelloSender } from '../../simulator/hello/sender.ts';
import { pooledKeyPairs } from '../../simulator/wsman/test-harness.ts';
import { createLogger } from '../../src/log.ts';
import {
  renewCertificate,
  rotatePassword,
  syncTime,
  unprovisionDevice,
  type DeviceOpsDeps,
} from '../../src/maintenance/device-ops.ts';
import { generateProvisioningChain } from '../../src/pki/generate-chain.ts';
import type { PkiFinished } from '../../src/pki/provisioner.ts';
import { storeChain } from '../../src/pki/service.ts';
import { addPsks, MEBX, randomAddressBase, randomPort, startTestScs, type TestScs } from './harness.ts';

/** After provisioning, on both paths, against the simulator over real sockets (docs/pki.md, "After provisioning"). */

function sender(scs: TestScs, device: SimDevice, address: string): HelloSender {
  const s = new HelloSender({
    scsHost: '127.0.0.1',
    scsPort: scs.helloPort,
    localAddress: address,
    timeFactor: 0.02,
    identity: () => device.helloIdentity(),
  });
  device.on('stateChanged', ({ to }) => {
    if (to === 'In') s.start();
    else s.stop();
  });
  return s;
}

describe('after provisioning: a device set up by certificate', () => {
  let scs: TestScs;
  let device: SimDevice;
  let hellos: HelloSender;
  let deps: DeviceOpsDeps;
  const port = randomPort();
  const address = randomAddressBase().replace(/\.1$/, '.2');
  const uuid = '3f1e2d4c-5b6a-4978-8a9b-0c1d2e3f4a5b';

  before(async () => {
    scs = await startTestScs({ amtTlsPort: port });
    const chain = await generateProvisioningChain({ dnsSuffix: 'example.com' });
    await storeChain(scs.store, chain, { dnsSuffix: 'example.com', actor: 'e2e' });
    device = new SimDevice(
      {
        uuid,
        mebxPassword: MEBX,
        domainName: 'example.com',
        provisioningState: 'In',
        pki: { userHashes: [createHash('sha256').update(chain.rootDer).digest('hex')] },
      },
      { keyPairProvider: pooledKeyPairs() },
    );
    await device.start({ host: address, tlsPort: port, httpPort: port + 1 });
    hellos = sender(scs, device, address);
    const done = new Promise<PkiFinished>((resolve) => scs.server.pki.once('finished', resolve));
    hellos.start();
    const f = await done;
    assert.equal(f.state, 'succeeded', `${f.code}: ${f.message}`);
    deps = {
      store: scs.store,
      ca: scs.server.ca,
      issuer: scs.server.ca,
      config: scs.server.config,
      log: createLogger('silent'),
      actor: 'e2e',
    };
  });
  after(async () => {
    hellos.stop();
    await device.stop();
    await scs.stop();
  });

  it('re-syncs the device clock', async () => {
    const r = await syncTime(deps, uuid);
    assert.ok(Math.abs(r.offsetSeconds) < 5);
    assert.ok((await scs.store.audit.list({})).some((e) => e.action === 'device.time_sync'));
  });

  it('rotates the admin password: the new one logs in, the old escrow row is retired', async () => {
    const before = await scs.store.devices.get(uuid);
    const { escrowId } = await rotatePassword(deps, uuid);
    const row = await scs.store.devices.get(uuid);
    assert.equal(row?.adminEscrowId, escrowId);
    assert.notEqual(before?.adminEscrowId, escrowId);
    const rows = await scs.store.escrow.list(uuid, 'admin');
    assert.equal(rows.find((r) => r.id === before?.adminEscrowId)?.status, 'retired');
    await syncTime(deps, uuid); // a session with the new password
  });

  it('renews the TLS certificate: the device serves the new one, the device record holds it', async () => {
    const before = await scs.store.devices.get(uuid);
    assert.deepEqual(await renewCertificate(deps, uuid, { withinDays: 30 }), {
      renewed: false,
      notAfter: before?.certNotAfter ?? null,
    });
    const r = await renewCertificate(deps, uuid);
    assert.equal(r.renewed, true);
    const row = await scs.store.devices.get(uuid);
    assert.notEqual(row?.certFingerprint, before?.certFingerprint);
    await syncTime(deps, uuid); // a session over the renewed certificate
  });

  it('unprovisions fully: the device returns to certificate setup mode and is provisioned again from its next hello', async () => {
    const again = new Promise<PkiFinished>((resolve) => scs.server.pki.once('finished', resolve));
    await unprovisionDevice(deps, uuid, { partial: false });
    const f = await again;
    assert.equal(f.state, 'succeeded', `${f.code}: ${f.message}`);
    assert.equal(device.state, 'Post');
    assert.ok((await scs.store.audit.list({})).some((e) => e.action === 'device.unprovision'));
  });
});

describe('after provisioning: a device set up by PSK', () => {
  let scs: TestScs;
  let device: SimDevice;
  let hellos: HelloSender;
  let deps: DeviceOpsDeps;
  const port = randomPort();
  const address = randomAddressBase().replace(/\.1$/, '.2');
  const uuid = '3f1e2d4c-5b6a-4978-8a9b-0c1d2e3f4a6c';

  before(async () => {
    scs = await startTestScs({ amtTlsPort: port });
    const [psk] = await addPsks(scs.store, 1, 'e2e');
    await addPsks(scs.store, 2, 'renewal', 'available');
    device = new SimDevice(
      { uuid, mebxPassword: MEBX, pid: psk!.pid, pps: psk!.pps.reveal() },
      { keyPairProvider: pooledKeyPairs() },
    );
    await device.start({ host: address, tlsPort: port, httpPort: port + 1 });
    hellos = sender(scs, device, address);
    hellos.start();
    const [f] = await scs.waitFinished(1);
    assert.equal(f?.state, 'succeeded', f?.code ?? '');
    deps = {
      store: scs.store,
      ca: scs.server.ca,
      issuer: scs.server.ca,
      config: scs.server.config,
      log: createLogger('silent'),
      actor: 'e2e',
    };
  });
  after(async () => {
    hellos.stop();
    await device.stop();
    await scs.stop();
  });

  it('rotates the password and re-syncs time over the issued certificate', async () => {
    await rotatePassword(deps, uuid);
    await syncTime(deps, uuid);
  });

  it('unprovisions partially: back to setup mode with the renewed PSK, and the server re-provisions it from the next hello', async () => {
    const renewed = (await scs.store.devices.get(uuid))?.pid;
    assert.ok(renewed !== null && renewed !== undefined);
    await unprovisionDevice(deps, uuid, { partial: true });
    const [, second] = await scs.waitFinished(2);
    assert.equal(second?.state, 'succeeded', second?.code ?? '');
    assert.equal(second?.job.pid, renewed, 'the second job ran on the renewed PSK');
    assert.equal(device.state, 'Post');
  });
});
