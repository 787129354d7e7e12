import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generatePsks } from '../psk/service.ts';
import { startHarness, type ApiHarness, type TokenKey } from './testing.ts';

interface ProfileBody {
  name: string;
  settings: Record<string, unknown>;
  secretsSet: Record<string, boolean>;
  version: number;
}
interface Problem {
  status: number;
  code: string;
  detail: string;
  errors?: { field: string; message: string }[];
}

const STRONG = 'Str0ng!Passw0rd-CANARY';
const MEBX = 'Mebx!CurrentCANARY1';

describe('profile routes', () => {
  let h: ApiHarness;
  const req = (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT',
    url: string,
    options: { body?: Record<string, unknown>; headers?: Record<string, string>; who?: TokenKey } = {},
  ) =>
    h.api.inject({
      method,
      url,
      headers: { ...h.auth(options.who ?? 'operator'), ...options.headers },
      ...(options.body === undefined ? {} : { payload: options.body }),
    });

  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  it('serves the default profile with its version as a strong ETag, and 304 for a matching If-None-Match', async () => {
    const res = await req('GET', '/api/v1/profiles/default', { who: 'viewer' });
    assert.equal(res.statusCode, 200);
    const p = res.json<ProfileBody>();
    assert.equal(res.headers.etag, `"${p.version}"`);
    assert.equal(p.settings.hostNamePattern, 'amt-{uuid8}');
    assert.deepEqual(p.secretsSet, { currentMebxPassword: false, adminPassword: false, newMebxPassword: false });
    const cached = await req('GET', '/api/v1/profiles/default', {
      who: 'viewer',
      headers: { 'if-none-match': `"${p.version}"` },
    });
    assert.equal(cached.statusCode, 304);
    assert.equal(cached.body, '');
    const list = await req('GET', '/api/v1/profiles', { who: 'viewer' });
    assert.deepEqual(
      list.json<{ items: ProfileBody[] }>().items.map((x) => x.name),
      ['default'],
    );
  });

  it('creates a profile with write-only secrets: the response, the log and the database file never hold them', async () => {
    const res = await req('POST', '/api/v1/profiles', {
      body: {
        name: 'lab',
        settings: { adminPassword: 'fixed', hostNamePattern: 'lab-{uuid8}', domainName: 'Lab.Example.COM', tls: false },
        secrets: { adminPassword: STRONG, currentMebxPassword: MEBX },
      },
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.headers.etag, '"1"');
    assert.equal(res.headers.location, '/api/v1/profiles/lab');
    const p = res.json<ProfileBody>();
    assert.equal(p.settings.domainName, 'lab.example.com');
    assert.deepEqual(p.secretsSet, { currentMebxPassword: true, adminPassword: true, newMebxPassword: false });
    assert.ok(!res.body.includes('CANARY'));
    const all = await req('GET', '/api/v1/profiles', { who: 'admin' });
    const audit = await req('GET', '/api/v1/audit?limit=1000', { who: 'admin' });
    assert.ok(!all.body.includes('CANARY') && !audit.body.includes('CANARY'));
    assert.ok(!h.logs().includes('CANARY'));
    const [entry] = await h.store.audit.list({ action: 'profile.create', limit: 1 });
    assert.equal(entry?.actor, 'api:operator');
    await h.store.close();
    const db = Buffer.concat(
      ['scs.db', 'scs.db-wal'].map((f) => {
        try {
          return readFileSync(path.join(h.dir, f));
        } catch {
          return Buffer.alloc(0);
        }
      }),
    );
    assert.ok(!db.includes(Buffer.from('CANARY')), 'a profile secret is in the database in clear');
  });
});

describe('profile changes', () => {
  let h: ApiHarness;
  const req = (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT',
    url: string,
    options: { body?: Record<string, unknown>; headers?: Record<string, string>; who?: TokenKey } = {},
  ) =>
    h.api.inject({
      method,
      url,
      headers: { ...h.auth(options.who ?? 'operator'), ...options.headers },
      ...(options.body === undefined ? {} : { payload: options.body }),
    });
  const problem = (
    res: { statusCode: number; headers: Record<string, unknown>; body: string },
    status: number,
    code: string,
  ) => {
    assert.equal(res.statusCode, status, res.body);
    assert.equal(res.headers['content-type'], 'application/problem+json');
    const p = JSON.parse(res.body) as Problem;
    assert.equal(p.code, code);
    return p;
  };

  before(async () => {
    h = await startHarness();
    await req('POST', '/api/v1/profiles', { body: { name: 'edit-me' } });
  });
  after(async () => {
    await h.close();
  });

  it('needs If-Match to change a profile: 428 without, 412 when stale or weak, 200 and a new ETag when current', async () => {
    const body = { settings: { timeSync: false } };
    const missing = problem(await req('PATCH', '/api/v1/profiles/edit-me', { body }), 428, 'SCS_PRECONDITION_REQUIRED');
    assert.match(missing.detail, /If-Match/);
    problem(
      await req('PATCH', '/api/v1/profiles/edit-me', { body, headers: { 'if-match': '"7"' } }),
      412,
      'SCS_PRECONDITION_FAILED',
    );
    problem(
      await req('PATCH', '/api/v1/profiles/edit-me', { body, headers: { 'if-match': 'W/"1"' } }),
      412,
      'SCS_PRECONDITION_FAILED',
    );
    const ok = await req('PATCH', '/api/v1/profiles/edit-me', { body, headers: { 'if-match': '"1"' } });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.headers.etag, '"2"');
    assert.equal(ok.json<ProfileBody>().settings.timeSync, false);
    // The ETag read before that change is stale now: a second editor loses, nothing changes.
    problem(
      await req('PATCH', '/api/v1/profiles/edit-me', {
        body: { settings: { tls: false } },
        headers: { 'if-match': '"1"' },
      }),
      412,
      'SCS_PRECONDITION_FAILED',
    );
    assert.equal((await h.store.profiles.require('edit-me')).settings.tls, true);
    const star = await req('PATCH', '/api/v1/profiles/edit-me', {
      body: { settings: { tls: false } },
      headers: { 'if-match': '*' },
    });
    assert.equal(star.headers.etag, '"3"');
    const list = await req('PATCH', '/api/v1/profiles/edit-me', {
      body: { settings: { renewPsk: false } },
      headers: { 'if-match': '"1", "3"' },
    });
    assert.equal(list.statusCode, 200);
    const [entry] = await h.store.audit.list({ action: 'profile.update', limit: 1 });
    assert.equal(entry?.actor, 'api:operator');
  });

  it('validates every field, naming it: schema checks first, then the profile rules', async () => {
    const headers = { 'if-match': '*' };
    const cases: [Record<string, unknown>, string][] = [
      [{ settings: { colour: 'red' } }, 'body/settings/colour'],
      [{ settings: { adminUser: 'a'.repeat(17) } }, 'body/settings/adminUser'],
      [{ settings: { adminUser: 'has space' } }, 'body/settings/adminUser'],
      [{ settings: { adminPassword: 'sometimes' } }, 'body/settings/adminPassword'],
      [{ settings: { mebxPassword: 'new' } }, 'body/settings/mebxPassword'],
      [{ settings: { certificateValidityDays: 0 } }, 'body/settings/certificateValidityDays'],
      [{ settings: { certificateValidityDays: 1.5 } }, 'body/settings/certificateValidityDays'],
      [{ settings: { onNoRenewalPsk: 'ignore' } }, 'body/settings/onNoRenewalPsk'],
      [{ settings: { hostNamePattern: '' } }, 'body/settings/hostNamePattern'],
      [{ secrets: { adminPassword: '' } }, 'body/secrets/adminPassword'],
      [{ secrets: { adminPassword: null } }, 'body/secrets/adminPassword'],
      [{ removeSecrets: ['rootPassword'] }, 'body/removeSecrets/0'],
      [{ secrets: { rootPassword: 'x' } }, 'body/secrets/rootPassword'],
    ];
    for (const [body, field] of cases) {
      const p = problem(await req('PATCH', '/api/v1/profiles/edit-me', { body, headers }), 400, 'SCS_ARGUMENT_INVALID');
      assert.ok(
        p.errors?.some((e) => e.field.startsWith(field)),
        `${JSON.stringify(body)} -> ${JSON.stringify(p.errors)}`,
      );
    }
    const rules: [Record<string, unknown>, string][] = [
      [{ settings: { hostNamePattern: 'pc-{serial}' } }, 'hostNamePattern'],
      [{ settings: { hostNamePattern: 'bad_name' } }, 'hostNamePattern'],
      [{ settings: { domainName: 'not a domain' } }, 'domainName'],
      [{ settings: { adminPassword: 'fixed' } }, 'adminPassword'],
      [{ secrets: { adminPassword: 'weakCANARY' } }, 'adminPassword'],
    ];
    for (const [body, field] of rules) {
      const res = await req('PATCH', '/api/v1/profiles/edit-me', { body, headers });
      const p = problem(res, 400, 'SCS_PROFILE_INVALID');
      assert.equal(p.errors?.[0]?.field, field, JSON.stringify(p));
      assert.ok(!res.body.includes('CANARY'), 'a rejected password was echoed');
    }
  });

  it('sets and removes secrets without ever returning them', async () => {
    const set = await req('PATCH', '/api/v1/profiles/edit-me', {
      body: { secrets: { currentMebxPassword: MEBX } },
      headers: { 'if-match': '*' },
    });
    assert.equal(set.json<ProfileBody>().secretsSet.currentMebxPassword, true);
    assert.ok(!set.body.includes('CANARY'));
    assert.equal((await h.store.profiles.secrets('edit-me')).currentMebxPassword?.reveal(), MEBX);
    const both = await req('PATCH', '/api/v1/profiles/edit-me', {
      body: { secrets: { currentMebxPassword: MEBX }, removeSecrets: ['currentMebxPassword'] },
      headers: { 'if-match': '*' },
    });
    problem(both, 400, 'SCS_ARGUMENT_INVALID');
    const removed = await req('PATCH', '/api/v1/profiles/edit-me', {
      body: { removeSecrets: ['currentMebxPassword'] },
      headers: { 'if-match': '*' },
    });
    assert.equal(removed.json<ProfileBody>().secretsSet.currentMebxPassword, false);
  });

  it('creates, refuses a duplicate, deletes with If-Match, and keeps the default profile', async () => {
    problem(await req('POST', '/api/v1/profiles', { body: { name: 'edit-me' } }), 409, 'SCS_PROFILE_CONFLICT');
    problem(await req('POST', '/api/v1/profiles', { body: { name: '-x' } }), 400, 'SCS_ARGUMENT_INVALID');
    const created = await req('POST', '/api/v1/profiles', { body: { name: 'short' } });
    assert.equal(created.statusCode, 201);
    problem(await req('DELETE', '/api/v1/profiles/short'), 428, 'SCS_PRECONDITION_REQUIRED');
    problem(
      await req('DELETE', '/api/v1/profiles/short', { headers: { 'if-match': '"9"' } }),
      412,
      'SCS_PRECONDITION_FAILED',
    );
    const del = await req('DELETE', '/api/v1/profiles/short', { headers: { 'if-match': '"1"' } });
    assert.equal(del.statusCode, 204);
    problem(await req('GET', '/api/v1/profiles/short'), 404, 'SCS_PROFILE_NOT_FOUND');
    problem(
      await req('DELETE', '/api/v1/profiles/short', { headers: { 'if-match': '*' } }),
      404,
      'SCS_PROFILE_NOT_FOUND',
    );
    problem(
      await req('DELETE', '/api/v1/profiles/default', { headers: { 'if-match': '*' } }),
      400,
      'SCS_PROFILE_INVALID',
    );
  });

  it('binds a batch to a profile, refuses unknown names, and keeps a bound profile from deletion', async () => {
    await generatePsks(h.store, { count: 3, batch: 'floor-2', actor: 'test' });
    const res = await req('PUT', '/api/v1/batches/floor-2/profile', { body: { profile: 'edit-me' } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json<{ profile: string; total: number }>().profile, 'edit-me');
    assert.equal(res.json<{ total: number }>().total, 3);
    problem(
      await req('PUT', '/api/v1/batches/floor-2/profile', { body: { profile: 'nope' } }),
      404,
      'SCS_PROFILE_NOT_FOUND',
    );
    problem(
      await req('PUT', '/api/v1/batches/nope/profile', { body: { profile: 'default' } }),
      404,
      'SCS_BATCH_NOT_FOUND',
    );
    const bound = problem(
      await req('DELETE', '/api/v1/profiles/edit-me', { headers: { 'if-match': '*' } }),
      400,
      'SCS_PROFILE_INVALID',
    );
    assert.match(bound.detail, /bound to batch "floor-2"/);
    const unbind = await req('PUT', '/api/v1/batches/floor-2/profile', { body: { profile: null } });
    assert.equal(unbind.json<{ profile: string | null }>().profile, null);
    const [entry] = await h.store.audit.list({ action: 'profile.bind', limit: 1 });
    assert.equal(entry?.actor, 'api:operator');
  });
});
