import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generatePsks } from '../psk/service.ts';
import { seedDevice, startHarness, type ApiHarness, type TokenKey } from './testing.ts';

interface DeviceBody {
  uuid: string;
  state: string;
  hostName: string | null;
  adminPasswordEscrowed: boolean;
  pid: string | null;
  certificate: { fingerprint: string | null; notAfter: string | null; pem?: string } | null;
  history?: { action: string; actor: string }[];
}
interface JobBody {
  id: number;
  deviceUuid: string;
  state: string;
  step: string | null;
  attempts: number;
  errorCode: string | null;
  errorMessage: string | null;
}

const uuids = Array.from({ length: 5 }, (_, i) => `4c4c4544-0035-5910-8051-b8c04f4e5a3${i}`);
const PASSWORD = 'Dev1ce!CANARY-pw';

describe('device and job routes', () => {
  let h: ApiHarness;
  const get = (url: string, who: TokenKey = 'viewer') => h.api.inject({ method: 'GET', url, headers: h.auth(who) });

  before(async () => {
    h = await startHarness();
    await generatePsks(h.store, { count: 5, batch: 'fleet', actor: 'test' });
    const psks = await h.store.psks.list();
    for (const [i, uuid] of uuids.entries()) {
      const psk = psks[i];
      if (psk === undefined) throw new Error('no PSK');
      await seedDevice(h.store, { uuid, pid: psk.pid, password: `${PASSWORD}${i}`, fail: i === 4 });
    }
  });
  after(async () => {
    await h.close();
  });

  it('lists devices in UUID order with keyset paging and a state filter', async () => {
    const first = (await get('/api/v1/devices?limit=2')).json<{ items: DeviceBody[]; next: string | null }>();
    assert.deepEqual(
      first.items.map((d) => d.uuid),
      uuids.slice(0, 2),
    );
    assert.equal(first.next, uuids[1]);
    const rest = (await get(`/api/v1/devices?limit=10&after=${first.next ?? ''}`)).json<{
      items: DeviceBody[];
      next: string | null;
    }>();
    assert.deepEqual(
      rest.items.map((d) => d.uuid),
      uuids.slice(2),
    );
    assert.equal(rest.next, null);
    const failed = (await get('/api/v1/devices?state=failed')).json<{ items: DeviceBody[] }>();
    assert.deepEqual(
      failed.items.map((d) => d.uuid),
      [uuids[4]],
    );
    const listed = first.items[0];
    assert.equal(listed?.certificate?.pem, undefined, 'the list leaves certificates out');
    assert.equal(listed?.adminPasswordEscrowed, true);
    const stats = (await get('/api/v1/devices/stats')).json<{ counts: Record<string, number>; total: number }>();
    assert.deepEqual([stats.counts.provisioned, stats.counts.failed, stats.total], [4, 1, 5]);
    const bad = await get('/api/v1/devices?state=broken');
    assert.equal(bad.statusCode, 400);
  });

  it('shows a device with its certificate and history to an operator, without the history to a viewer', async () => {
    const uuid = uuids[0] ?? '';
    const operator = (await get(`/api/v1/devices/${uuid.toUpperCase()}`, 'operator')).json<DeviceBody>();
    assert.equal(operator.uuid, uuid);
    assert.equal(operator.state, 'provisioned');
    assert.match(operator.certificate?.pem ?? '', /BEGIN CERTIFICATE/);
    assert.equal(operator.certificate?.notAfter, '2030-01-01T00:00:00.000Z');
    assert.ok(operator.history && operator.history.length >= 3);
    assert.ok(operator.history.some((e) => e.action === 'device.provisioned'));
    const viewer = (await get(`/api/v1/devices/${uuid}`, 'viewer')).json<DeviceBody>();
    assert.equal(viewer.history, undefined);
    assert.equal(viewer.uuid, uuid);
    const missing = await get('/api/v1/devices/00000000-0000-0000-0000-000000000000');
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json<{ code: string }>().code, 'SCS_DEVICE_NOT_FOUND');
    assert.equal((await get('/api/v1/devices/not-a-uuid')).statusCode, 400);
  });

  it('reveals the admin password only to a granted token, audited with its name, and nowhere else', async () => {
    const uuid = uuids[1] ?? '';
    const res = await h.api.inject({
      method: 'POST',
      url: `/api/v1/devices/${uuid}/reveal-password`,
      headers: h.auth('operatorReveal'),
      payload: { reason: 'BIOS update' },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { uuid, username: 'admin', password: `${PASSWORD}1` });
    const [entry] = await h.store.audit.list({ action: 'device.reveal_password', limit: 1 });
    assert.equal(entry?.actor, 'api:operatorReveal');
    assert.equal(entry.detail.reason, 'BIOS update');
    const denied = await h.api.inject({
      method: 'POST',
      url: `/api/v1/devices/${uuid}/reveal-password`,
      headers: h.auth('operator'),
    });
    assert.equal(denied.statusCode, 403);
    const noEscrow = await h.api.inject({
      method: 'POST',
      url: `/api/v1/devices/${uuids[4] ?? ''}/reveal-password`,
      headers: h.auth('admin'),
    });
    assert.equal(noEscrow.statusCode, 404);
    const everything: string[] = [];
    for (const url of [
      '/api/v1/devices?limit=1000',
      ...uuids.map((u) => `/api/v1/devices/${u}`),
      '/api/v1/jobs?limit=1000',
      '/api/v1/audit?limit=1000',
    ]) {
      everything.push((await get(url, 'admin')).body);
    }
    assert.ok(!everything.join('\n').includes('CANARY'), 'a device password leaked into a response');
    assert.ok(!h.logs().includes('CANARY'), 'a device password reached the log');
  });

  it('lists jobs newest first with paging and filters, and shows one job with its step, attempts and error', async () => {
    const all = (await get('/api/v1/jobs')).json<{ items: JobBody[]; next: number | null }>();
    assert.equal(all.items.length, 5);
    assert.deepEqual(
      all.items.map((j) => j.id),
      [...all.items.map((j) => j.id)].sort((a, b) => b - a),
    );
    const page = (await get('/api/v1/jobs?limit=2')).json<{ items: JobBody[]; next: number | null }>();
    assert.equal(page.next, page.items[1]?.id);
    const next = (await get(`/api/v1/jobs?limit=2&after=${page.next ?? 0}`)).json<{ items: JobBody[] }>();
    assert.ok(next.items.every((j) => j.id < (page.next ?? 0)));
    const failed = (await get('/api/v1/jobs?state=failed')).json<{ items: JobBody[] }>();
    assert.equal(failed.items.length, 1);
    const job = failed.items[0];
    assert.deepEqual(
      [job?.deviceUuid, job?.state, job?.step, job?.attempts, job?.errorCode, job?.errorMessage],
      [uuids[4], 'failed', 'facts', 1, 'SCS_TLS_BAD_KEY', 'the PPS differs'],
    );
    const byDevice = (await get(`/api/v1/jobs?device=${uuids[2] ?? ''}`)).json<{ items: JobBody[] }>();
    assert.deepEqual(
      byDevice.items.map((j) => j.deviceUuid),
      [uuids[2]],
    );
    const one = await get(`/api/v1/jobs/${job?.id ?? 0}`);
    assert.equal(one.json<JobBody>().errorCode, 'SCS_TLS_BAD_KEY');
    const stats = (await get('/api/v1/jobs/stats')).json<{ counts: Record<string, number> }>();
    assert.deepEqual(stats.counts, { queued: 0, running: 0, succeeded: 4, failed: 1 });
    const missing = await get('/api/v1/jobs/999999');
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json<{ code: string }>().code, 'SCS_JOB_NOT_FOUND');
  });
});
