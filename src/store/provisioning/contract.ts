import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createCaMaterial } from '../../crypto/ca.ts';
import { isScsError, type ErrorCode } from '../../errors.ts';
import { generatePid, generatePps } from '../../psk/generate.ts';
import type { Pid } from '../../psk/pid.ts';
import { Secret } from '../../secret.ts';
import type { StoreHarness } from '../contract.ts';
import type { Store } from '../store.ts';
import { DEFAULT_PROFILE_SETTINGS } from './profile.ts';

const actor = 'contract-test';
const UUID = '4c4c4544-0035-5910-8051-b8c04f4e5a31';
const UUID2 = '11111111-2222-4333-8444-555555555555';

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(isScsError(e, code), `expected ${code}, got ${String(e)}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

async function addPsks(store: Store, n: number, batch: string, state?: 'exported'): Promise<Pid[]> {
  const rows = Array.from({ length: n }, () => ({
    pid: generatePid(),
    pps: new Secret(generatePps()),
    batch,
    ...(state === undefined ? {} : { state }),
  }));
  await store.psks.insertMany(rows, { actor, source: 'generate' });
  return rows.map((r) => r.pid);
}

/** Hex of `text` as the raw bytes would hold it, for scanning the database file's tables. */
function hexOf(text: string): string {
  return Buffer.from(text, 'utf8').toString('hex');
}

/**
 * The provisioning part of the Store (profiles, devices, jobs, escrow, CA, PSK bindings), run
 * against every adapter like src/store/contract.ts.
 */
export function runProvisioningContract(name: string, makeStore: () => Promise<StoreHarness>): void {
  describe(`Store provisioning contract: ${name}`, () => {
    let h: StoreHarness;
    let store: Store;
    beforeEach(async () => {
      h = await makeStore();
      store = h.store;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    describe('profiles', () => {
      it('has a default profile from the first start, with the default settings and no secrets', async () => {
        const p = await store.profiles.require('default');
        assert.deepEqual(p.settings, DEFAULT_PROFILE_SETTINGS);
        assert.equal(p.version, 1);
        assert.deepEqual(p.secretsSet, { currentMebxPassword: false, adminPassword: false, newMebxPassword: false });
        assert.deepEqual(await store.profiles.secrets('default'), {});
      });

      it('creates a profile with validated fields, seals its passwords and audits without them', async () => {
        const created = await store.profiles.create(
          'lab',
          {
            settings: { adminUser: 'scsadmin', hostNamePattern: 'lab-{uuid8}', domainName: 'Lab.Example', tls: 'off' },
            secrets: { currentMebxPassword: new Secret('Mebx-Pw0rd!'), adminPassword: new Secret('Adm1n-Pass!') },
          },
          { actor },
        );
        assert.equal(created.settings.adminUser, 'scsadmin');
        assert.equal(created.settings.domainName, 'lab.example');
        assert.equal(created.settings.tls, false);
        assert.equal(created.secretsSet.currentMebxPassword, true);
        const secrets = await store.profiles.secrets('lab');
        assert.equal(secrets.currentMebxPassword?.reveal(), 'Mebx-Pw0rd!');
        const [entry] = await store.audit.list({ action: 'profile.create', limit: 1 });
        assert.equal(entry?.detail['secret.currentMebxPassword'], 'set');
        assert.ok(!JSON.stringify(entry).includes('Mebx-Pw0rd!'));
        const rows = await h.query(`select hex(secrets) as s, body from profiles where name = 'lab'`);
        assert.ok(!String(rows[0]?.s).includes(hexOf('Mebx-Pw0rd!').toUpperCase()));
        assert.ok(!String(rows[0]?.body).includes('Pw0rd'));
        await rejectsWith(store.profiles.create('lab', {}, { actor }), 'SCS_PROFILE_CONFLICT');
      });

      it('refuses unknown fields, bad values and a fixed password without one, naming the field', async () => {
        await rejectsWith(
          store.profiles.create('x', { settings: { colour: 'red' } }, { actor }),
          'SCS_PROFILE_INVALID',
          /colour/,
        );
        await rejectsWith(
          store.profiles.create('x', { settings: { adminUser: 'this-name-is-too-long' } }, { actor }),
          'SCS_PROFILE_INVALID',
          /adminUser/,
        );
        await rejectsWith(
          store.profiles.create('x', { settings: { hostNamePattern: 'amt_{uuid8}' } }, { actor }),
          'SCS_PROFILE_INVALID',
          /hostNamePattern/,
        );
        await rejectsWith(
          store.profiles.create('x', { settings: { hostNamePattern: '{serial}' } }, { actor }),
          'SCS_PROFILE_INVALID',
          /unknown placeholder \{serial\}/,
        );
        await rejectsWith(
          store.profiles.create('x', { settings: { certificateValidityDays: 0 } }, { actor }),
          'SCS_PROFILE_INVALID',
          /certificateValidityDays/,
        );
        await rejectsWith(
          store.profiles.create('x', { settings: { adminPassword: 'fixed' } }, { actor }),
          'SCS_PROFILE_INVALID',
          /adminPassword/,
        );
        await rejectsWith(
          store.profiles.create('x', { secrets: { adminPassword: new Secret('weak') } }, { actor }),
          'SCS_PROFILE_INVALID',
          /adminPassword: not a strong AMT password/,
        );
        await rejectsWith(store.profiles.create('bad name', {}, { actor }), 'SCS_PROFILE_INVALID', /profile name/);
        assert.equal(await store.profiles.get('x'), undefined);
      });

      it('updates with optimistic concurrency: the version rises, a stale version is a conflict', async () => {
        const v1 = await store.profiles.require('default');
        const v2 = await store.profiles.update(
          'default',
          { settings: { timeSync: false } },
          { actor, expectedVersion: v1.version },
        );
        assert.equal(v2.version, 2);
        assert.equal(v2.settings.timeSync, false);
        assert.equal(v2.settings.tls, true);
        await rejectsWith(
          store.profiles.update('default', { settings: { tls: false } }, { actor, expectedVersion: 1 }),
          'SCS_PROFILE_CONFLICT',
          /version 2, not 1/,
        );
        const v3 = await store.profiles.update(
          'default',
          { secrets: { currentMebxPassword: new Secret('P@ssw0rd') } },
          { actor },
        );
        assert.equal(v3.version, 3);
        assert.equal(v3.secretsSet.currentMebxPassword, true);
        const v4 = await store.profiles.update('default', { secrets: { currentMebxPassword: null } }, { actor });
        assert.equal(v4.secretsSet.currentMebxPassword, false);
        await rejectsWith(store.profiles.update('nope', {}, { actor }), 'SCS_PROFILE_NOT_FOUND');
      });

      it('binds batches, refuses to delete the default or a bound profile, deletes an unbound one', async () => {
        await addPsks(store, 1, 'b-lab');
        await store.profiles.create('lab', {}, { actor });
        await store.profiles.bindBatch('b-lab', 'lab', { actor });
        assert.equal((await store.batches.get('b-lab'))?.profile, 'lab');
        await rejectsWith(store.profiles.delete('lab', { actor }), 'SCS_PROFILE_INVALID', /bound to batch "b-lab"/);
        await rejectsWith(store.profiles.delete('default', { actor }), 'SCS_PROFILE_INVALID');
        await rejectsWith(store.profiles.bindBatch('b-lab', 'nope', { actor }), 'SCS_PROFILE_NOT_FOUND');
        await rejectsWith(store.profiles.bindBatch('no-batch', 'lab', { actor }), 'SCS_BATCH_NOT_FOUND');
        await store.profiles.bindBatch('b-lab', null, { actor });
        await store.profiles.delete('lab', { actor });
        assert.deepEqual(
          (await store.profiles.list()).map((p) => p.name),
          ['default'],
        );
        await rejectsWith(store.profiles.delete('lab', { actor }), 'SCS_PROFILE_NOT_FOUND');
      });
    });

    describe('jobs', () => {
      it('creates one unfinished job per device: a second is refused until the first finishes', async () => {
        const [pid] = (await addPsks(store, 1, 'b')) as [Pid];
        const job = await store.jobs.create(
          { deviceUuid: UUID, pid, address: '10.0.0.5', profile: 'default' },
          { actor },
        );
        assert.ok(job);
        assert.equal(job.state, 'queued');
        assert.equal(job.attempts, 0);
        assert.equal(
          await store.jobs.create({ deviceUuid: UUID, pid, address: '10.0.0.5', profile: 'default' }, { actor }),
          undefined,
        );
        assert.equal((await store.jobs.activeFor(UUID))?.id, job.id);
        const running = await store.jobs.update(
          job.id,
          {
            state: 'running',
            attempts: 1,
            step: 'facts',
            data: { commitSent: false, newPid: 'ABC' },
            lease: { owner: 'n1', until: new Date(Date.now() + 1000) },
          },
          { action: 'job.step', detail: { step: 'facts' } },
          { actor },
        );
        assert.equal(running.state, 'running');
        assert.equal(running.step, 'facts');
        assert.deepEqual(running.data, { commitSent: false, newPid: 'ABC' });
        assert.equal(running.leaseOwner, 'n1');
        assert.deepEqual(
          (await store.jobs.unfinished()).map((j) => j.id),
          [job.id],
        );
        const failed = await store.jobs.finish(
          job.id,
          { state: 'failed', code: 'SCS_TLS_BAD_KEY', message: 'bad key' },
          { actor },
        );
        assert.equal(failed.state, 'failed');
        assert.equal(failed.errorCode, 'SCS_TLS_BAD_KEY');
        assert.ok(failed.finishedAt instanceof Date);
        assert.equal(failed.leaseOwner, null);
        await rejectsWith(
          store.jobs.update(job.id, { step: 'x' }, undefined, { actor }),
          'SCS_STORE_FAILED',
          /finished/,
        );
        await rejectsWith(store.jobs.finish(job.id, { state: 'succeeded' }, { actor }), 'SCS_STORE_FAILED');
        const again = await store.jobs.create(
          { deviceUuid: UUID, pid, address: '10.0.0.5', profile: 'default' },
          { actor },
        );
        assert.ok(again);
        assert.deepEqual(await store.jobs.countByState(), { queued: 1, running: 0, succeeded: 0, failed: 1 });
        assert.deepEqual(
          (await store.jobs.list({ state: 'failed' })).map((j) => j.id),
          [job.id],
        );
        assert.deepEqual(
          (await store.jobs.list({ order: 'desc', limit: 1 })).map((j) => j.id),
          [again.id],
        );
        const actions = (await store.audit.list({ limit: 10 })).map((e) => e.action);
        for (const a of ['job.created', 'job.step', 'job.failed']) assert.ok(actions.includes(a), a);
      });

      it('progress writes what update writes, audited the same, and refuses what update refuses', async () => {
        const [pid] = (await addPsks(store, 1, 'b')) as [Pid];
        const job = await store.jobs.create(
          { deviceUuid: UUID, pid, address: '10.0.0.5', profile: 'default' },
          { actor },
        );
        assert.ok(job);
        const lease = { owner: 'n1', until: new Date(Date.now() + 60_000) };
        await store.jobs.update(job.id, { state: 'running', attempts: 1, lease }, undefined, { actor });
        assert.equal(
          await store.jobs.progress(job.id, { step: 'facts', data: { newPid: 'ABC' }, lease }, undefined, { actor }),
          undefined,
        );
        let row = await store.jobs.get(job.id);
        assert.equal(row?.step, 'facts');
        assert.deepEqual(row?.data, { newPid: 'ABC' });
        assert.equal(row?.leaseOwner, 'n1');
        assert.equal(row?.leaseUntil?.getTime(), lease.until.getTime());
        await store.jobs.progress(
          job.id,
          { step: 'commit', data: { newPid: 'ABC', commitSent: true }, lease },
          { action: 'job.commit_sent', detail: { n: 1 } },
          { actor },
        );
        row = await store.jobs.get(job.id);
        assert.equal(row?.step, 'commit');
        assert.deepEqual(row?.data, { newPid: 'ABC', commitSent: true });
        const [entry] = await store.audit.list({ limit: 1 });
        assert.equal(entry?.action, 'job.commit_sent');
        assert.deepEqual(entry?.detail, { job: job.id, uuid: UUID, n: 1 });
        // Fenced: another node's lease.
        await assert.rejects(
          store.jobs.progress(job.id, { step: 'x', lease: { owner: 'n2', until: lease.until } }, undefined, { actor }),
          (e) => isScsError(e, 'SCS_STORE_FAILED') && e.details?.leaseLost === true,
        );
        await assert.rejects(
          store.jobs.progress(
            job.id,
            { step: 'x', lease: { owner: 'n2', until: lease.until } },
            { action: 'job.x' },
            { actor },
          ),
          (e) => isScsError(e, 'SCS_STORE_FAILED') && e.details?.leaseLost === true,
        );
        assert.equal((await store.jobs.get(job.id))?.step, 'commit');
        await store.jobs.finish(job.id, { state: 'succeeded' }, { actor });
        await rejectsWith(
          store.jobs.progress(job.id, { step: 'x' }, undefined, { actor }),
          'SCS_STORE_FAILED',
          /finished/,
        );
        await rejectsWith(
          store.jobs.progress(-1, { step: 'x' }, undefined, { actor }),
          'SCS_STORE_FAILED',
          /does not exist/,
        );
        assert.equal((await store.audit.list({ action: 'job.x' })).length, 0);
      });

      it('leases jobs to one node: a live lease is not claimed, an expired one is, renewals and releases only touch the owner', async () => {
        const soon = (ms: number): Date => new Date(Date.now() + ms);
        const uuids = ['10000000-0000-4000-8000-000000000001', '10000000-0000-4000-8000-000000000002', UUID2];
        const [live, dead, free] = await Promise.all(
          uuids.map(async (deviceUuid, i) => {
            const lease =
              i === 0
                ? { owner: 'n1', until: soon(60_000) }
                : i === 1
                  ? { owner: 'n1', until: soon(-1000) }
                  : undefined;
            const j = await store.jobs.create(
              { deviceUuid, pid: generatePid(), address: '10.0.0.5', profile: 'default', ...(lease ? { lease } : {}) },
              { actor },
            );
            assert.ok(j);
            return j;
          }),
        );
        assert.ok(live && dead && free);
        assert.equal(live.leaseOwner, 'n1');
        const claimed = await store.jobs.claim({ owner: 'n2', until: soon(30_000) });
        assert.deepEqual(
          claimed.map((j) => [j.id, j.leaseOwner]),
          [
            [dead.id, 'n2'],
            [free.id, 'n2'],
          ].sort((a, b) => Number(a[0]) - Number(b[0])),
        );
        assert.deepEqual(await store.jobs.claim({ owner: 'n3', until: soon(30_000) }), []);
        // A live lease is not taken, not even by its own owner (a node claims only what nobody holds).
        assert.deepEqual(await store.jobs.claim({ owner: 'n1', until: soon(30_000), limit: 5 }), []);
        // n1 lost `dead` to n2: its progress write is fenced off, and a renewal says so.
        await assert.rejects(
          store.jobs.update(dead.id, { step: 'facts', lease: { owner: 'n1', until: soon(30_000) } }, undefined, {
            actor,
          }),
          (e) => isScsError(e, 'SCS_STORE_FAILED') && e.details?.leaseLost === true,
        );
        assert.equal((await store.jobs.get(dead.id))?.leaseOwner, 'n2');
        assert.deepEqual(await store.jobs.renewLeases('n1', [live.id, dead.id], soon(30_000)), [live.id]);
        await store.jobs.releaseLeases('n1', [live.id, dead.id]);
        assert.equal((await store.jobs.get(live.id))?.leaseOwner, null);
        assert.equal((await store.jobs.get(dead.id))?.leaseOwner, 'n2');
        assert.deepEqual(
          (await store.jobs.claim({ owner: 'n3', until: soon(30_000), limit: 1 })).map((j) => j.id),
          [live.id],
        );
        // A single node at start takes everything, live leases included.
        const all = await store.jobs.claim({ owner: 'n4', until: soon(30_000), ignoreLeases: true });
        assert.equal(all.length, 3);
        await store.jobs.finish(free.id, { state: 'succeeded' }, { actor });
        assert.deepEqual(await store.jobs.renewLeases('n4', [free.id], soon(30_000)), []);
      });
    });

    describe('devices', () => {
      it('records a job, then the provisioned facts, keeps its history and reveals the admin password audited', async () => {
        const [pid] = (await addPsks(store, 1, 'b')) as [Pid];
        await store.devices.noteJob(UUID, { address: '10.0.0.5', profile: 'default', jobId: 7 }, { actor });
        assert.equal((await store.devices.get(UUID))?.state, 'provisioning');
        await rejectsWith(store.devices.revealAdminPassword(UUID, { actor }), 'SCS_DEVICE_NOT_FOUND', /no escrowed/);
        const escrowId = await store.escrow.put(
          { deviceUuid: UUID, purpose: 'admin', username: 'scsadmin', secret: new Secret('Adm1n-Pass!'), jobId: 7 },
          { actor },
        );
        const notAfter = new Date('2030-01-01T00:00:00.000Z');
        await store.devices.markProvisioned(
          UUID,
          {
            address: '10.0.0.5',
            amtVersion: '6.2.0',
            hostName: 'amt-4c4c4544',
            domainName: 'lab.example',
            profile: 'default',
            adminUser: 'scsadmin',
            adminEscrowId: escrowId,
            mebxEscrowId: null,
            certPem: '-----BEGIN CERTIFICATE-----\n...',
            certFingerprint: 'ab'.repeat(32),
            certNotAfter: notAfter,
            pid,
            jobId: 7,
          },
          { actor },
        );
        const d = await store.devices.get(UUID);
        assert.equal(d?.state, 'provisioned');
        assert.equal(d.amtVersion, '6.2.0');
        assert.equal(d.pid, pid);
        assert.equal(d.adminEscrowId, escrowId);
        assert.equal(d.certNotAfter?.toISOString(), notAfter.toISOString());
        assert.ok(d.provisionedAt instanceof Date);
        const revealed = await store.devices.revealAdminPassword(UUID, { actor: 'alice', reason: 'support call' });
        assert.equal(revealed.username, 'scsadmin');
        assert.equal(revealed.password.reveal(), 'Adm1n-Pass!');
        const history = await store.devices.history(UUID);
        assert.deepEqual(
          history.map((e) => e.action),
          ['device.reveal_password', 'device.provisioned', 'device.escrow', 'device.provisioning'],
        );
        assert.equal(history[0]?.actor, 'alice');
        assert.ok(!JSON.stringify(history).includes('Adm1n-Pass!'));
        await store.devices.noteJob(UUID2, { address: '10.0.0.6', profile: 'default', jobId: 8 }, { actor });
        await store.devices.markState(UUID2, 'failed', { jobId: 8, code: 'SCS_TLS_BAD_KEY' }, { actor });
        assert.deepEqual(await store.devices.countByState(), {
          provisioning: 0,
          provisioned: 1,
          failed: 1,
          unverified: 0,
        });
        assert.deepEqual(
          (await store.devices.list({ state: 'failed' })).map((x) => x.uuid),
          [UUID2],
        );
        assert.deepEqual(
          (await store.devices.list({ afterUuid: UUID2 })).map((x) => x.uuid),
          [UUID],
        );
        await rejectsWith(
          store.devices.revealAdminPassword(UUID.replace('4c', '5c'), { actor }),
          'SCS_DEVICE_NOT_FOUND',
        );
      });
    });

    describe('escrow', () => {
      it('seals passwords bound to device and purpose: not in clear, and not openable elsewhere', async () => {
        const id = await store.escrow.put(
          { deviceUuid: UUID, purpose: 'mebx', secret: new Secret('Mebx-N3w-pw!') },
          { actor },
        );
        const row = await store.escrow.open(id);
        assert.equal(row.secret.reveal(), 'Mebx-N3w-pw!');
        assert.equal(row.status, 'candidate');
        await store.escrow.setStatus([id], 'active');
        assert.deepEqual(
          (await store.escrow.list(UUID)).map((r) => [r.purpose, r.status]),
          [['mebx', 'active']],
        );
        const raw = await h.query(`select hex(secret) as s from escrow where id = ${id}`);
        assert.ok(!String(raw[0]?.s).includes(hexOf('Mebx-N3w-pw!').toUpperCase()));
        await h.exec(`update escrow set device_uuid = '${UUID2}' where id = ${id}`);
        await rejectsWith(store.escrow.open(id), 'SCS_SECRET_UNREADABLE');
        await h.exec(`update escrow set device_uuid = '${UUID}', purpose = 'admin' where id = ${id}`);
        await rejectsWith(store.escrow.open(id), 'SCS_SECRET_UNREADABLE');
      });
    });

    describe('CA', () => {
      it('stores the CA once, its key sealed; a second create returns the first', async () => {
        assert.equal(await store.ca.get(), undefined);
        const first = await createCaMaterial('contract CA');
        const r1 = await store.ca.create(first, { actor });
        assert.equal(r1.created, true);
        const second = await createCaMaterial('other CA');
        const r2 = await store.ca.create(second, { actor });
        assert.equal(r2.created, false);
        assert.equal(r2.material.certPem, first.certPem);
        const got = await store.ca.get();
        assert.equal(got?.certPem, first.certPem);
        assert.ok(got.keyPkcs8.reveal().equals(first.keyPkcs8.reveal()));
        const raw = await h.query(`select hex(key) as k from ca`);
        assert.ok(!String(raw[0]?.k).includes(first.keyPkcs8.reveal().subarray(40, 72).toString('hex').toUpperCase()));
      });
    });

    describe('PSK bindings', () => {
      it('takes an available renewal PSK (own batch first, never exported), binds it, and runs out cleanly', async () => {
        await addPsks(store, 2, 'exp', 'exported');
        const other = await addPsks(store, 1, 'other');
        const own = await addPsks(store, 1, 'own');
        const r1 = await store.pskBindings.takeRenewal(
          { deviceUuid: UUID, preferBatch: 'own', profile: null },
          { actor },
        );
        assert.ok(r1);
        assert.equal(r1.pid, own[0]);
        assert.equal(r1.pps.reveal().length, 32);
        const row = await store.psks.get(r1.pid);
        assert.equal(row?.state, 'in_use');
        assert.equal(row.priorState, 'available');
        assert.equal(row.deviceUuid, UUID);
        assert.deepEqual(await store.pskBindings.boundTo(UUID), [r1.pid]);
        // Own batch empty: another batch with the same profile binding (none = default).
        const r2 = await store.pskBindings.takeRenewal(
          { deviceUuid: UUID2, preferBatch: 'own', profile: null },
          { actor },
        );
        assert.equal(r2?.pid, other[0]);
        assert.equal(
          await store.pskBindings.takeRenewal({ deviceUuid: UUID2, preferBatch: 'own', profile: null }, { actor }),
          undefined,
        );
        await store.pskBindings.bind(r1.pid, null, { actor });
        assert.deepEqual(await store.pskBindings.boundTo(UUID), []);
        const [reveal] = await store.audit.list({ action: 'psk.reveal', limit: 1 });
        assert.equal(reveal?.detail.purpose, 'renewal');
      });

      it('takes renewal PSKs only from batches bound to the same profile', async () => {
        await store.profiles.create('lab', {}, { actor });
        await addPsks(store, 1, 'default-batch');
        const lab = await addPsks(store, 1, 'lab-batch');
        await store.profiles.bindBatch('lab-batch', 'lab', { actor });
        const r = await store.pskBindings.takeRenewal(
          { deviceUuid: UUID, preferBatch: 'gone', profile: 'lab' },
          { actor },
        );
        assert.equal(r?.pid, lab[0]);
        assert.equal(
          await store.pskBindings.takeRenewal({ deviceUuid: UUID2, preferBatch: 'gone', profile: 'lab' }, { actor }),
          undefined,
        );
      });
    });

    it('keeps the audit chain whole across provisioning writes', async () => {
      const [pid] = (await addPsks(store, 1, 'b')) as [Pid];
      await store.profiles.update('default', { settings: { tls: false } }, { actor });
      const job = await store.jobs.create(
        { deviceUuid: UUID, pid, address: '10.0.0.5', profile: 'default' },
        { actor },
      );
      assert.ok(job);
      await store.jobs.finish(job.id, { state: 'succeeded' }, { actor });
      const verdict = await store.audit.verify();
      assert.equal(verdict.ok, true);
    });
  });
}
