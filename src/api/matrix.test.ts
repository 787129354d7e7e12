import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { generatePid, generatePps } from '../psk/generate.ts';
import { formatPid } from '../psk/pid.ts';
import { formatPps } from '../psk/pps.ts';
import { generatePsks } from '../psk/service.ts';
import { createToken } from './tokens.ts';
import { seedDevice, startHarness, TOKEN_KEYS, type ApiHarness, type TokenKey } from './testing.ts';

type Caller = TokenKey | 'none' | 'malformed' | 'revoked';
const CALLERS: readonly Caller[] = [...TOKEN_KEYS, 'none', 'malformed', 'revoked'];

const ALL: readonly TokenKey[] = TOKEN_KEYS;
const WRITERS: readonly TokenKey[] = ['admin', 'operator', 'operatorReveal'];
const REVEALERS: readonly TokenKey[] = ['admin', 'operatorReveal', 'auditorReveal'];
const AUDITORS: readonly TokenKey[] = ['admin', 'auditor', 'auditorReveal'];
const ADMIN: readonly TokenKey[] = ['admin'];
const EXPORTERS: readonly TokenKey[] = ['admin', 'operatorReveal'];

interface Call {
  readonly url: string;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

interface Row {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** The route as OpenAPI names it. */
  readonly route: string;
  /** Who may call it; `public` = anyone, no token needed. */
  readonly allowed: readonly TokenKey[] | 'public';
  /** Status of an allowed call. */
  readonly ok: number;
  /** Builds one call; runs before each request so mutating routes get a fresh target. */
  readonly call: () => Promise<Call> | Call;
}

/**
 * The whole route x role matrix (docs/api.md, "Roles"): every route under /api and the system
 * routes, called by every role, by no token, a malformed token and a revoked token.
 */
describe('route x role matrix', () => {
  let h: ApiHarness;
  let base: string;
  const pids: string[] = [];
  let taskId = '';
  let victims = 0;
  let revokedToken = '';
  let profiles = 0;
  const DEVICE = '4c4c4544-0035-5910-8051-b8c04f4e5a31';
  const UNKNOWN_DEVICE = '0badc0de-0000-4000-8000-000000000404';
  let jobId = 0;
  const ifMatch = async (name: string): Promise<Record<string, string>> => ({
    'if-match': `"${(await h.store.profiles.require(name)).version}"`,
  });

  const freshPid = (): string => {
    const pid = pids.shift();
    if (pid === undefined) throw new Error('matrix ran out of PSKs');
    return pid;
  };

  const rows: Row[] = [
    { method: 'GET', route: '/healthz', allowed: 'public', ok: 200, call: () => ({ url: '/healthz' }) },
    { method: 'GET', route: '/metrics', allowed: ALL, ok: 200, call: () => ({ url: '/metrics' }) },
    { method: 'GET', route: '/api/v1/me', allowed: ALL, ok: 200, call: () => ({ url: '/api/v1/me' }) },
    { method: 'GET', route: '/api/v1/psks', allowed: ALL, ok: 200, call: () => ({ url: '/api/v1/psks?limit=5' }) },
    { method: 'GET', route: '/api/v1/psks/stats', allowed: ALL, ok: 200, call: () => ({ url: '/api/v1/psks/stats' }) },
    {
      method: 'GET',
      route: '/api/v1/psks/{pid}',
      allowed: ALL,
      ok: 200,
      call: () => ({ url: `/api/v1/psks/${pids[0] ?? ''}` }),
    },
    {
      method: 'POST',
      route: '/api/v1/psks/{pid}/reveal',
      allowed: REVEALERS,
      ok: 200,
      call: () => ({ url: `/api/v1/psks/${pids[0] ?? ''}/reveal`, body: { purpose: 'matrix' } }),
    },
    {
      method: 'POST',
      route: '/api/v1/psks/generate',
      allowed: WRITERS,
      ok: 201,
      call: () => ({ url: '/api/v1/psks/generate', body: { count: 2, batch: 'matrix-gen' } }),
    },
    {
      method: 'POST',
      route: '/api/v1/psks/revoke',
      allowed: WRITERS,
      ok: 200,
      call: () => ({ url: '/api/v1/psks/revoke', body: { pids: [freshPid()] } }),
    },
    {
      method: 'POST',
      route: '/api/v1/psks/export',
      allowed: EXPORTERS,
      ok: 200,
      call: () => ({ url: '/api/v1/psks/export', body: { format: 'csv', batch: 'mx', count: 1 } }),
    },
    {
      method: 'POST',
      route: '/api/v1/psks/import',
      allowed: WRITERS,
      ok: 200,
      call: () => ({
        url: '/api/v1/psks/import?batch=imported',
        body: `PID,PPS\r\n${formatPid(generatePid())},${formatPps(generatePps())}\r\n`,
        headers: { 'content-type': 'text/csv' },
      }),
    },
    { method: 'GET', route: '/api/v1/batches', allowed: ALL, ok: 200, call: () => ({ url: '/api/v1/batches' }) },
    {
      method: 'GET',
      route: '/api/v1/batches/{name}',
      allowed: ALL,
      ok: 200,
      call: () => ({ url: '/api/v1/batches/matrix' }),
    },
    { method: 'GET', route: '/api/v1/profiles', allowed: ALL, ok: 200, call: () => ({ url: '/api/v1/profiles' }) },
    {
      method: 'GET',
      route: '/api/v1/profiles/{name}',
      allowed: ALL,
      ok: 200,
      call: () => ({ url: '/api/v1/profiles/default' }),
    },
    {
      method: 'POST',
      route: '/api/v1/profiles',
      allowed: WRITERS,
      ok: 201,
      call: () => ({ url: '/api/v1/profiles', body: { name: `p-${++profiles}`, settings: { timeSync: false } } }),
    },
    {
      method: 'PATCH',
      route: '/api/v1/profiles/{name}',
      allowed: WRITERS,
      ok: 200,
      call: async () => ({
        url: '/api/v1/profiles/default',
        body: { settings: { timeSync: profiles++ % 2 === 0 } },
        headers: await ifMatch('default'),
      }),
    },
    {
      method: 'DELETE',
      route: '/api/v1/profiles/{name}',
      allowed: WRITERS,
      ok: 204,
      call: async () => {
        const name = `gone-${++profiles}`;
        await h.store.profiles.create(name, {}, { actor: 'test' });
        return { url: `/api/v1/profiles/${name}`, headers: await ifMatch(name) };
      },
    },
    {
      method: 'PUT',
      route: '/api/v1/batches/{name}/profile',
      allowed: WRITERS,
      ok: 200,
      call: () => ({ url: '/api/v1/batches/matrix/profile', body: { profile: 'default' } }),
    },
    { method: 'GET', route: '/api/v1/devices', allowed: ALL, ok: 200, call: () => ({ url: '/api/v1/devices' }) },
    {
      method: 'GET',
      route: '/api/v1/devices/stats',
      allowed: ALL,
      ok: 200,
      call: () => ({ url: '/api/v1/devices/stats' }),
    },
    {
      method: 'GET',
      route: '/api/v1/devices/{uuid}',
      allowed: ALL,
      ok: 200,
      call: () => ({ url: `/api/v1/devices/${DEVICE}` }),
    },
    {
      method: 'POST',
      route: '/api/v1/devices/{uuid}/reveal-password',
      allowed: REVEALERS,
      ok: 200,
      call: () => ({ url: `/api/v1/devices/${DEVICE}/reveal-password`, body: { reason: 'matrix' } }),
    },
    // Device actions (docs/pki.md): an unknown device, so allowed callers get 404 without a
    // device to reach; the actions themselves run against the simulator in test/e2e/pki-lifecycle.test.ts.
    {
      method: 'POST',
      route: '/api/v1/devices/{uuid}/unprovision',
      allowed: WRITERS,
      ok: 404,
      call: () => ({ url: `/api/v1/devices/${UNKNOWN_DEVICE}/unprovision`, body: { partial: true } }),
    },
    // Device actions (docs/pki.md): an unknown device, so allowed callers get 404 without a
    // device to reach; the actions themselves run against the simulator in test/e2e/pki-lifecycle.test.ts.
    {
      method: 'POST',
      route: '/api/v1/devices/{uuid}/rotate-password',
      allowed: WRITERS,
      ok: 404,
      call: () => ({ url: `/api/v1/devices/${UNKNOWN_DEVICE}/rotate-password` }),
    },
    // Device actions (docs/pki.md): an unknown device, so allowed callers get 404 without a
    // device to reach; the actions themselves run against the simulator in test/e2e/pki-lifecycle.test.ts.
    {
      method: 'POST',
      route: '/api/v1/devices/{uuid}/renew-certificate',
      allowed: WRITERS,
      ok: 404,
      call: () => ({ url: `/api/v1/devices/${UNKNOWN_DEVICE}/renew-certificate`, body: { withinDays: 30 } }),
    },
    // Device actions (docs/pki.md): an unknown device, so allowed callers get 404 without a
    // device to reach; the actions themselves run against the simulator in test/e2e/pki-lifecycle.test.ts.
    {
      method: 'POST',
      route: '/api/v1/devices/{uuid}/sync-time',
      allowed: WRITERS,
      ok: 404,
      call: () => ({ url: `/api/v1/devices/${UNKNOWN_DEVICE}/sync-time` }),
    },
    { method: 'GET', route: '/api/v1/jobs', allowed: ALL, ok: 200, call: () => ({ url: '/api/v1/jobs' }) },
    { method: 'GET', route: '/api/v1/jobs/stats', allowed: ALL, ok: 200, call: () => ({ url: '/api/v1/jobs/stats' }) },
    {
      method: 'GET',
      route: '/api/v1/jobs/{id}',
      allowed: ALL,
      ok: 200,
      call: () => ({ url: `/api/v1/jobs/${jobId}` }),
    },
    { method: 'GET', route: '/api/v1/audit', allowed: AUDITORS, ok: 200, call: () => ({ url: '/api/v1/audit' }) },
    {
      method: 'GET',
      route: '/api/v1/audit/verify',
      allowed: AUDITORS,
      ok: 200,
      call: () => ({ url: '/api/v1/audit/verify' }),
    },
    { method: 'GET', route: '/api/v1/tokens', allowed: ADMIN, ok: 200, call: () => ({ url: '/api/v1/tokens' }) },
    {
      method: 'POST',
      route: '/api/v1/tokens',
      allowed: ADMIN,
      ok: 201,
      call: () => ({ url: '/api/v1/tokens', body: { name: `new-${++victims}`, role: 'viewer' } }),
    },
    {
      method: 'DELETE',
      route: '/api/v1/tokens/{name}',
      allowed: ADMIN,
      ok: 200,
      call: async () => {
        const name = `victim-${++victims}`;
        await createToken(h.store, { name, role: 'viewer', actor: 'test' });
        return { url: `/api/v1/tokens/${name}` };
      },
    },
    { method: 'GET', route: '/api/v1/tasks', allowed: ALL, ok: 200, call: () => ({ url: '/api/v1/tasks' }) },
    {
      method: 'GET',
      route: '/api/v1/tasks/{id}',
      allowed: ALL,
      ok: 200,
      call: () => ({ url: `/api/v1/tasks/${taskId}` }),
    },
    { method: 'GET', route: '/api/v1/events', allowed: ALL, ok: 200, call: () => ({ url: '/api/v1/events' }) },
  ];

  before(async () => {
    h = await startHarness();
    await generatePsks(h.store, { count: 60, batch: 'matrix', actor: 'test' });
    await generatePsks(h.store, { count: 20, batch: 'mx', actor: 'test' });
    const rows60 = await h.store.psks.list({ limit: 60 });
    for (const p of rows60) pids.push(formatPid(p.pid));
    const held = rows60.at(-1);
    if (held === undefined) throw new Error('no PSK');
    pids.pop();
    jobId = (await seedDevice(h.store, { uuid: DEVICE, pid: held.pid, password: 'Matrix-Passw0rd!' })).jobId;
    const task = h.api.scs.tasks.start('test.noop', 'test', 1, () => Promise.resolve({ ok: true }));
    taskId = task.id;
    await h.api.scs.tasks.settled(taskId);
    const revoked = await createToken(h.store, { name: 'gone', role: 'admin', actor: 'test' });
    await h.store.tokens.revoke('gone', { actor: 'test' });
    revokedToken = revoked.token.reveal();
    await h.api.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(h.api.server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await h.close();
  });

  function headersFor(caller: Caller): Record<string, string> {
    switch (caller) {
      case 'none':
        return {};
      case 'malformed':
        return { authorization: 'Bearer not-a-token' };
      case 'revoked':
        return { authorization: `Bearer ${revokedToken}` };
      default:
        return h.auth(caller);
    }
  }

  /** The SSE route never ends by itself: read its status over a real socket, then hang up. */
  async function streamStatus(url: string, headers: Record<string, string>): Promise<number> {
    const abort = new AbortController();
    const res = await fetch(base + url, { headers, signal: abort.signal });
    const status = res.status;
    abort.abort();
    await res.body?.cancel().catch(() => undefined);
    return status;
  }

  it('covers every route the OpenAPI document lists', async () => {
    const doc = (await h.api.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, Record<string, unknown>>;
    }>();
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
    );
    const tested = rows.map((r) => `${r.method} ${r.route}`);
    assert.deepEqual([...tested].sort(), [...documented].sort());
  });

  for (const row of rows) {
    const who =
      row.allowed === 'public'
        ? `anyone, with or without a token -> ${row.ok}`
        : `${row.allowed.join(', ')} -> ${row.ok}; other roles 403; no, malformed or revoked token 401`;
    it(`${row.method} ${row.route}: ${who}`, async () => {
      const got: Record<string, number> = {};
      const want: Record<string, number> = {};
      for (const caller of CALLERS) {
        const { url, body, headers: extra } = await row.call();
        const headers = { ...headersFor(caller), ...extra };
        want[caller] =
          row.allowed === 'public'
            ? row.ok
            : caller === 'none' || caller === 'malformed' || caller === 'revoked'
              ? 401
              : row.allowed.includes(caller)
                ? row.ok
                : 403;
        if (row.route === '/api/v1/events' && want[caller] === 200) {
          got[caller] = await streamStatus(url, headers);
          continue;
        }
        const res = await h.api.inject({
          method: row.method,
          url,
          headers,
          ...(body === undefined ? {} : { payload: body as Record<string, unknown> | string }),
        });
        got[caller] = res.statusCode;
        if (res.statusCode >= 400) {
          assert.equal(res.headers['content-type'], 'application/problem+json', `${caller}: ${res.body}`);
          const problem = res.json<{ code: string; status: number }>();
          assert.equal(problem.status, res.statusCode);
          if (res.statusCode === 401) assert.equal(problem.code, 'SCS_UNAUTHENTICATED');
          if (res.statusCode === 403) assert.equal(problem.code, 'SCS_FORBIDDEN');
        }
      }
      assert.deepEqual(got, want);
    });
  }
});
