import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Fleet } from '../../simulator/fleet/fleet.ts';
import type { PskPair } from '../../src/psk/formats/pair.ts';
import { addPsks, fleetFor, leaks, MEBX, randomPort, secretsOf, startTestScs, type TestScs } from './harness.ts';

/**
 * protocol.md §1, §3-§7 end to end: a simulated device says hello, the server verifies its PSK
 * over TLS-PSK, configures it, commits, verifies it over TLS with the certificate its CA issued,
 * and retires the PSK while binding the renewed one.
 */
describe('provisioning one device end to end', () => {
  const port = randomPort();
  let scs: TestScs;
  let fleet: Fleet;
  let psks: PskPair[];

  before(async () => {
    scs = await startTestScs({ amtTlsPort: port, profile: { domainName: 'lab.example', mebxPassword: 'random' } });
    psks = await addPsks(scs.store, 1, 'lab');
    await addPsks(scs.store, 2, 'lab', 'available');
    fleet = await fleetFor(scs, psks, port);
  });
  after(async () => {
    await fleet.stop();
    await scs.stop();
  });

  it('configures the device, verifies it Post over TLS, and records it', async () => {
    const [done] = await scs.waitFinished(1);
    assert.equal(done?.state, 'succeeded', JSON.stringify(done));
    const record = fleet.devices[0];
    assert.ok(record);
    await fleet.waitFor((f) => f.devices[0]?.state === 'Post', { timeoutMs: 5000 });
    const uuid = record.uuid;
    const device = await scs.store.devices.get(uuid);
    assert.equal(device?.state, 'provisioned');
    assert.equal(device.address, record.address);
    assert.equal(device.amtVersion, '6.2.0');
    assert.equal(device.hostName, `amt-${uuid.slice(0, 8)}`);
    assert.equal(device.domainName, 'lab.example');
    assert.equal(device.adminUser, 'admin');
    assert.ok(device.adminEscrowId !== null);
    assert.ok(device.mebxEscrowId !== null);
    assert.ok(device.certPem !== null);
    const cert = new X509Certificate(device.certPem);
    assert.ok(cert.checkIssued(new X509Certificate(scs.server.ca.certPem)));
    assert.match(cert.subjectAltName ?? '', new RegExp(`DNS:amt-${uuid.slice(0, 8)}\\.lab\\.example`));
    assert.equal(device.certFingerprint, cert.fingerprint256.replaceAll(':', '').toLowerCase());
    // The renewed PSK: bound to the device, which now holds it.
    assert.ok(device.pid !== null);
    assert.equal(fleet.devices[0]?.pid, device.pid);
    const renewed = await scs.store.psks.get(device.pid);
    assert.equal(renewed?.state, 'in_use');
    assert.equal(renewed.deviceUuid, uuid);
    const old = await scs.store.psks.get((psks[0] as PskPair).pid);
    assert.equal(old?.state, 'consumed');
    assert.equal(old.deviceUuid, uuid);
    const [job] = await scs.store.jobs.list({ deviceUuid: uuid });
    assert.equal(job?.state, 'succeeded');
    assert.equal(job.step, 'commit');
    assert.equal(job.data.commitSent, true);
    assert.equal((await scs.store.audit.verify()).ok, true);
  });

  it('audits every step and the device history, and reveals the admin password only through an audited call', async () => {
    const uuid = fleet.devices[0]?.uuid ?? '';
    const history = (await scs.store.devices.history(uuid)).map((e) => e.action).reverse();
    for (const a of [
      'job.created',
      'device.provisioning',
      'job.started',
      'device.escrow',
      'job.step',
      'job.commit_sent',
      'device.provisioned',
      'job.succeeded',
    ]) {
      assert.ok(history.includes(a), `${a} missing from ${history.join(' ')}`);
    }
    const steps = (await scs.store.devices.history(uuid))
      .filter((e) => e.action === 'job.step')
      .map((e) => e.detail.step)
      .reverse();
    assert.deepEqual(steps, [
      'facts',
      'admin-credentials',
      'mebx-password',
      'time-sync',
      'host-domain',
      'tls',
      'renew-psk',
      'commit',
    ]);
    const revealed = await scs.store.devices.revealAdminPassword(uuid, { actor: 'e2e-operator' });
    assert.equal(revealed.username, 'admin');
    assert.ok(revealed.password.reveal().length >= 16);
    const escrowed = await scs.store.escrow.list(uuid);
    assert.deepEqual(escrowed.map((e) => [e.purpose, e.status]).sort(), [
      ['admin', 'active'],
      ['mebx', 'active'],
    ]);
    const mebx = await scs.store.escrow.open(escrowed.find((e) => e.purpose === 'mebx')?.id ?? 0);
    // No secret in any log line: the PPS handed out, the renewed one, the passwords.
    const device = await scs.store.devices.get(uuid);
    const renewedPps = await scs.store.psks.reveal(device?.pid ?? ('' as never), { actor: 'e2e', purpose: 'test' });
    const secrets = secretsOf(psks, [renewedPps.reveal(), revealed.password.reveal(), mebx.secret.reveal(), MEBX]);
    assert.ok(scs.logs.length > 10);
    assert.deepEqual(leaks(scs.logs, secrets), []);
  });

  it('counts the hello, the job and the step durations', async () => {
    const m = scs.server.metrics;
    assert.ok(((await m.hellosReceived.get()).values[0]?.value ?? 0) >= 1);
    assert.equal((await m.jobsSucceeded.get()).values[0]?.value, 1);
    const text = await m.registry.metrics();
    assert.match(text, /scs_step_duration_seconds_count\{step="tls",outcome="ok"\} 1/);
    assert.match(text, /scs_step_duration_seconds_count\{step="verify",outcome="ok"\} 1/);
  });
});
