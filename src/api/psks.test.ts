import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generatePid } from '../psk/generate.ts';
import { formatPid, type Pid } from '../psk/pid.ts';
import { formatPps } from '../psk/pps.ts';
import { generatePsks } from '../psk/service.ts';
import type { Store } from '../store/store.ts';
import { startHarness, type ApiHarness, type TokenKey } from './testing.ts';

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: { field: string; message: string }[];
}
interface PskBody {
  id: number;
  pid: string;
  batch: string;
  state: string;
}
interface Page {
  items: PskBody[];
  next: number | null;
}

/** Every PPS in the store, raw and dashed: what must never appear in a response unless revealed. */
async function allPps(store: Store): Promise<string[]> {
  const out: string[] = [];
  for await (const r of store.psks.iterateWithPps({}, { actor: 'test', purpose: 'scan' })) {
    out.push(r.pps.reveal(), formatPps(r.pps.reveal()));
  }
  return out;
}

function assertProblem(
  res: { statusCode: number; headers: Record<string, unknown>; body: string },
  status: number,
  code: string,
): Problem {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(res.headers['content-type'], 'application/problem+json');
  const p = JSON.parse(res.body) as Problem;
  assert.equal(p.status, status);
  assert.equal(p.code, code);
  assert.equal(p.type, `urn:amt-scs:error:${code}`);
  assert.ok(p.title.length > 0 && p.detail.length > 0);
  assert.ok(!/\n\s+at |node_modules|\.ts:\d+/.test(res.body), `a stack trace leaked: ${res.body}`);
  return p;
}

describe('PSK routes', () => {
  let h: ApiHarness;
  const get = (url: string, who: TokenKey = 'viewer') => h.api.inject({ method: 'GET', url, headers: h.auth(who) });
  const post = (url: string, body: unknown, who: TokenKey = 'operator') =>
    h.api.inject({ method: 'POST', url, headers: h.auth(who), payload: body as Record<string, unknown> });

  before(async () => {
    h = await startHarness({ api: { limits: { generateSyncMax: 100 } } });
  });
  after(async () => {
    await h.close();
  });

  it('generates PSKs into a batch and audits it with the token name as actor', async () => {
    const res = await post('/api/v1/psks/generate', { count: 100, batch: 'lab-1' });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json(), { batch: 'lab-1', generated: 100, collisions: 0 });
    const [entry] = await h.store.audit.list({ action: 'psk.generate', limit: 1 });
    assert.equal(entry?.actor, 'api:operator');
    assert.equal(entry.detail.batch, 'lab-1');
    assert.equal(entry.pids.length, 100);
  });

  it('pages through PSKs with limit and after until next is null, in id order without gaps', async () => {
    await generatePsks(h.store, { count: 150, batch: 'lab-2', actor: 'test' });
    const seen: number[] = [];
    let after: number | null = 0;
    let pages = 0;
    while (after !== null) {
      const res = await get(`/api/v1/psks?limit=40&after=${after}`);
      assert.equal(res.statusCode, 200);
      const page = res.json<Page>();
      seen.push(...page.items.map((p) => p.id));
      after = page.next;
      pages++;
    }
    assert.equal(seen.length, 250);
    assert.equal(pages, 7);
    assert.deepEqual(
      seen,
      [...seen].sort((a, b) => a - b),
    );
    assert.equal(new Set(seen).size, 250);
  });

  it('filters by batch and by one or more states', async () => {
    const lab2 = (await get('/api/v1/psks?batch=lab-2&limit=1000')).json<Page>();
    assert.equal(lab2.items.length, 150);
    assert.ok(lab2.items.every((p) => p.batch === 'lab-2'));
    const toRevoke = lab2.items.slice(0, 3).map((p) => p.pid);
    assert.equal((await post('/api/v1/psks/revoke', { pids: toRevoke, reason: 'lost' })).statusCode, 200);
    const revoked = (await get('/api/v1/psks?state=revoked')).json<Page>();
    assert.deepEqual(revoked.items.map((p) => p.pid).sort(), [...toRevoke].sort());
    const both = (await get('/api/v1/psks?state=revoked&state=available&limit=1000')).json<Page>();
    assert.equal(both.items.length, 250);
    assert.equal(both.next, null);
  });

  it('answers problems for an unknown batch, a bad state and an out-of-range limit', async () => {
    assertProblem(await get('/api/v1/psks?batch=nope'), 404, 'SCS_BATCH_NOT_FOUND');
    const bad = assertProblem(await get('/api/v1/psks?state=lost'), 400, 'SCS_ARGUMENT_INVALID');
    assert.ok(
      bad.errors?.some((e) => e.field.startsWith('querystring/state')),
      JSON.stringify(bad),
    );
    const limit = assertProblem(await get('/api/v1/psks?limit=1001'), 400, 'SCS_ARGUMENT_INVALID');
    assert.deepEqual(limit.errors?.[0]?.field, 'querystring/limit');
    const extra = assertProblem(await get('/api/v1/psks?colour=red'), 400, 'SCS_ARGUMENT_INVALID');
    assert.deepEqual(extra.errors?.[0], { field: 'querystring/colour', message: 'is not a known field' });
  });

  it('gets one PSK by PID in any accepted form, without its PPS', async () => {
    const [first] = (await get('/api/v1/psks?limit=1')).json<Page>().items;
    assert.ok(first);
    for (const form of [first.pid, first.pid.replace('-', ''), first.pid.toLowerCase()]) {
      const res = await get(`/api/v1/psks/${encodeURIComponent(form)}`);
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json<Record<string, unknown>>();
      assert.equal(body.pid, first.pid);
      assert.ok(!('pps' in body));
    }
    assertProblem(await get(`/api/v1/psks/${formatPid(generatePid())}`), 404, 'SCS_PSK_NOT_FOUND');
    assertProblem(await get('/api/v1/psks/ABCD-EFGH'), 400, 'SCS_PID_INVALID');
  });

  it('never puts a PPS in a list, get, stats, batch or audit response', async () => {
    const secrets = await allPps(h.store);
    assert.ok(secrets.length >= 500);
    const [first] = (await get('/api/v1/psks?limit=1')).json<Page>().items;
    const bodies: string[] = [];
    for (const url of [
      '/api/v1/psks?limit=1000',
      `/api/v1/psks/${first?.pid ?? ''}`,
      '/api/v1/psks/stats',
      '/api/v1/batches',
      '/api/v1/batches/lab-1',
      '/api/v1/audit?limit=1000',
      '/api/v1/tasks',
    ]) {
      const res = await get(url, 'admin');
      assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
      bodies.push(res.body);
    }
    const all = bodies.join('\n');
    for (const s of secrets) assert.ok(!all.includes(s), 'a PPS leaked into a response');
    assert.ok(!h.logs().includes(secrets[0] ?? '-'), 'a PPS leaked into the log');
  });

  it('reveals one PPS to a token with the reveal grant and audits it with the token name and purpose', async () => {
    const [first] = (await get('/api/v1/psks?limit=1')).json<Page>().items;
    assert.ok(first);
    const res = await post(`/api/v1/psks/${first.pid}/reveal`, { purpose: 'typing into MEBx' }, 'operatorReveal');
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json<{ pid: string; pps: string }>();
    const stored = await h.store.psks.reveal(first.pid.replace('-', '') as Pid, { actor: 'test', purpose: 'check' });
    assert.equal(body.pps, formatPps(stored.reveal()));
    assert.equal(body.pid, first.pid);
    assert.equal(res.headers['cache-control'], 'no-store');
    const [, entry] = await h.store.audit.list({ action: 'psk.reveal', limit: 2 });
    assert.equal(entry?.actor, 'api:operatorReveal');
    assert.equal(entry.detail.purpose, 'api: typing into MEBx');
    assertProblem(await post(`/api/v1/psks/${first.pid}/reveal`, {}, 'operator'), 403, 'SCS_FORBIDDEN');
    assertProblem(await post(`/api/v1/psks/${formatPid(generatePid())}/reveal`, {}, 'admin'), 404, 'SCS_PSK_NOT_FOUND');
  });

  it('revokes all of the PIDs or none, with the reason and the token name in the audit log', async () => {
    const items = (await get('/api/v1/psks?state=available&limit=3')).json<Page>().items.map((p) => p.pid);
    const ok = await post('/api/v1/psks/revoke', { pids: items.slice(0, 2), reason: 'stolen laptop' });
    assert.deepEqual(ok.json(), { revoked: 2 });
    const [entry] = await h.store.audit.list({ action: 'psk.state', limit: 1 });
    assert.equal(entry?.actor, 'api:operator');
    assert.equal(entry.detail.reason, 'stolen laptop');
    // One already revoked: nothing changes, the third stays available.
    assertProblem(await post('/api/v1/psks/revoke', { pids: items }), 409, 'SCS_PSK_STATE_INVALID');
    const third = (await get(`/api/v1/psks/${items[2] ?? ''}`)).json<PskBody>();
    assert.equal(third.state, 'available');
    assertProblem(await post('/api/v1/psks/revoke', { pids: [formatPid(generatePid())] }), 404, 'SCS_PSK_NOT_FOUND');
    assertProblem(await post('/api/v1/psks/revoke', { pids: [] }), 400, 'SCS_ARGUMENT_INVALID');
  });

  it('validates the generate body, naming the field', async () => {
    const zero = assertProblem(await post('/api/v1/psks/generate', { count: 0 }), 400, 'SCS_ARGUMENT_INVALID');
    assert.equal(zero.errors?.[0]?.field, 'body/count');
    const extra = assertProblem(
      await post('/api/v1/psks/generate', { count: 1, size: 2 }),
      400,
      'SCS_ARGUMENT_INVALID',
    );
    assert.deepEqual(extra.errors?.[0], { field: 'body/size', message: 'is not a known field' });
    const missing = assertProblem(await post('/api/v1/psks/generate', {}), 400, 'SCS_ARGUMENT_INVALID');
    assert.equal(missing.errors?.[0]?.field, 'body/count');
    assertProblem(await post('/api/v1/psks/generate', { count: 1, batch: '../etc' }), 400, 'SCS_ARGUMENT_INVALID');
    const notJson = await h.api.inject({
      method: 'POST',
      url: '/api/v1/psks/generate',
      headers: { ...h.auth('operator'), 'content-type': 'application/json' },
      payload: '{"count": 5, "passphrase": "CANARY-SECRET"',
    });
    const p = assertProblem(notJson, 400, 'SCS_ARGUMENT_INVALID');
    assert.ok(!notJson.body.includes('CANARY'), p.detail);
    const text = await h.api.inject({
      method: 'POST',
      url: '/api/v1/psks/generate',
      headers: { ...h.auth('operator'), 'content-type': 'text/plain' },
      payload: 'count=5',
    });
    assertProblem(text, 415, 'SCS_MEDIA_TYPE_INVALID');
    const big = await h.api.inject({
      method: 'POST',
      url: '/api/v1/psks/generate',
      headers: { ...h.auth('operator'), 'content-type': 'application/json' },
      payload: JSON.stringify({ count: 1, batch: 'x'.repeat(2 * 1024 * 1024) }),
    });
    assertProblem(big, 413, 'SCS_REQUEST_TOO_LARGE');
  });

  it('runs a large generate as a background task with progress events, then reports its result', async () => {
    const events: { type: string; data: Record<string, unknown> }[] = [];
    const unsubscribe = h.api.scs.hub.subscribe((e) => events.push({ type: e.type, data: e.data }));
    const res = await post('/api/v1/psks/generate', { count: 2500, batch: 'big' });
    assert.equal(res.statusCode, 202, res.body);
    const { task } = res.json<{ task: { id: string; state: string; total: number } }>();
    assert.equal(res.headers.location, `/api/v1/tasks/${task.id}`);
    assert.equal(task.state, 'running');
    assert.equal(task.total, 2500);
    await h.api.scs.tasks.settled(task.id);
    const done = (await get(`/api/v1/tasks/${task.id}`)).json<{
      state: string;
      done: number;
      result: Record<string, unknown>;
    }>();
    assert.equal(done.state, 'succeeded');
    assert.equal(done.done, 2500);
    assert.deepEqual(done.result, { batch: 'big', generated: 2500, collisions: 0 });
    const listed = (await get('/api/v1/tasks')).json<{ items: { id: string }[] }>();
    assert.equal(listed.items[0]?.id, task.id);
    const taskEvents = events.filter((e) => e.type === 'task' && e.data.id === task.id);
    assert.equal(taskEvents.at(0)?.data.state, 'running');
    assert.equal(taskEvents.at(-1)?.data.state, 'succeeded');
    // Counts follow: a psk.counts event arrives once the batch is in.
    for (let i = 0; i < 50 && !events.some((e) => e.type === 'psk.counts' && (e.data.total as number) >= 2750); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(events.some((e) => e.type === 'psk.counts' && (e.data.total as number) >= 2750));
    unsubscribe();
    assertProblem(await get('/api/v1/tasks/00000000-0000-4000-8000-000000000000'), 404, 'SCS_TASK_NOT_FOUND');
    assertProblem(await get('/api/v1/tasks/not-a-uuid'), 400, 'SCS_ARGUMENT_INVALID');
  });

  it('answers an unknown route with a problem, not an HTML page', async () => {
    const p = assertProblem(await get('/api/v1/nothing-here'), 404, 'SCS_ROUTE_NOT_FOUND');
    assert.equal(p.detail, 'no route GET /api/v1/nothing-here');
  });

  it('turns an unexpected failure into a 500 that says nothing of it, and logs it', async () => {
    const failing = await startHarness();
    try {
      // A store that breaks in a way no ScsError describes.
      const psks = failing.store.psks;
      Object.defineProperty(psks, 'countByState', {
        value: () => Promise.reject(new TypeError('CANARY internal detail')),
      });
      const res = await failing.api.inject({
        method: 'GET',
        url: '/api/v1/psks/stats',
        headers: failing.auth('viewer'),
      });
      const p = assertProblem(res, 500, 'SCS_INTERNAL');
      assert.ok(!res.body.includes('CANARY'));
      assert.match(p.detail, /^unexpected server error \(request [0-9a-f-]{36}\)$/);
      assert.match(failing.logs(), /CANARY internal detail/);
    } finally {
      await failing.close();
    }
  });
});
