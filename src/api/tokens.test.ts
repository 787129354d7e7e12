import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { isScsError } from '../errors.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/store.ts';
import { startHarness, type ApiHarness } from './testing.ts';
import { BOOTSTRAP_TOKEN_FILE, createToken, ensureBootstrapToken, hashToken, TokenAuthenticator } from './tokens.ts';

function lines(): { out: string[]; err: string[]; io: { out(l: string): void; err(l: string): void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l) => out.push(l), err: (l) => err.push(l) } };
}

/** Every file of the SQLite database (main file and WAL) as one buffer. */
function databaseBytes(dir: string): Buffer {
  const parts: Buffer[] = [];
  for (const f of ['scs.db', 'scs.db-wal']) {
    try {
      parts.push(readFileSync(path.join(dir, f)));
    } catch {
      // no WAL right now
    }
  }
  return Buffer.concat(parts);
}

describe('first-start admin token', () => {
  let dir: string;
  let store: Store;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'scs-boot-'));
    ({ store } = await openStore({
      db: `sqlite:${path.join(dir, 'scs.db')}`,
      masterKeyFile: path.join(dir, 'master.key'),
    }));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates one admin token, prints it once, writes it to admin.token with mode 0600, and stores only its hash', async () => {
    const first = lines();
    const dataDir = path.join(dir, 'data');
    const r = await ensureBootstrapToken(store, { dataDir }, first.io);
    assert.equal(r.created, true);
    const file = path.join(dataDir, BOOTSTRAP_TOKEN_FILE);
    assert.equal(r.file, file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const token = readFileSync(file, 'utf8').trim();
    assert.match(token, /^scs_[A-Za-z0-9_-]{43}$/);
    assert.equal(first.out.filter((l) => l.includes(token)).length, 1, 'printed exactly once');
    assert.ok(first.out.join('\n').includes(file), 'says where it was written');
    const p = await new TokenAuthenticator(store).authenticate(`Bearer ${token}`);
    assert.deepEqual([p.name, p.role], ['admin', 'admin']);

    const second = lines();
    assert.deepEqual(await ensureBootstrapToken(store, { dataDir }, second.io), { created: false });
    assert.deepEqual([...second.out, ...second.err], []);

    await store.close();
    const bytes = databaseBytes(dir);
    assert.ok(!bytes.includes(Buffer.from(token)), 'the token is in the database in clear');
    assert.ok(bytes.includes(Buffer.from(hashToken(token))), 'its SHA-256 is what is stored');
    ({ store } = await openStore({
      db: `sqlite:${path.join(dir, 'scs.db')}`,
      masterKeyFile: path.join(dir, 'master.key'),
    }));
    const [entry] = await store.audit.list({ action: 'token.create' });
    assert.equal(entry?.actor, 'bootstrap');
  });

  it('creates a fresh one when every token was revoked, replacing the old file', async () => {
    const dataDir = path.join(dir, 'data');
    await ensureBootstrapToken(store, { dataDir }, lines().io);
    const old = readFileSync(path.join(dataDir, BOOTSTRAP_TOKEN_FILE), 'utf8');
    await store.tokens.revoke('admin', { actor: 'test' });
    assert.equal((await ensureBootstrapToken(store, { dataDir }, lines().io)).created, true);
    const fresh = readFileSync(path.join(dataDir, BOOTSTRAP_TOKEN_FILE), 'utf8');
    assert.notEqual(fresh, old);
    assert.equal(statSync(path.join(dataDir, BOOTSTRAP_TOKEN_FILE)).mode & 0o777, 0o600);
  });

  it('creates nothing while another active token exists', async () => {
    await createToken(store, { name: 'ops', role: 'operator', actor: 'test' });
    assert.deepEqual(await ensureBootstrapToken(store, { dataDir: dir }, lines().io), { created: false });
  });

  it('stores nothing when the file cannot be written', async () => {
    const blocker = path.join(dir, 'not-a-dir');
    await import('node:fs/promises').then((fs) => fs.writeFile(blocker, 'x'));
    await assert.rejects(ensureBootstrapToken(store, { dataDir: path.join(blocker, 'data') }, lines().io), (e) =>
      isScsError(e, 'SCS_FILE_IO'),
    );
    assert.equal(await store.tokens.countActive(), 0);
  });
});

describe('token authentication', () => {
  let h: ApiHarness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  it('accepts the Bearer scheme in any case and rejects everything else with one message', async () => {
    const auth = new TokenAuthenticator(h.store);
    assert.equal((await auth.authenticate(`bearer ${h.tokens.viewer}`)).name, 'viewer');
    assert.equal((await auth.authenticate(`Bearer   ${h.tokens.viewer}`)).name, 'viewer');
    const bad = [
      `Basic ${h.tokens.viewer}`,
      `Bearer ${h.tokens.viewer}x`,
      `Bearer scs_${'A'.repeat(43)}`,
      'Bearer',
      '',
      `Bearer ${h.tokens.viewer} extra`,
    ];
    const messages = new Set<string>();
    for (const header of bad) {
      await assert.rejects(auth.authenticate(header), (e) => {
        assert.ok(isScsError(e, 'SCS_UNAUTHENTICATED'), header);
        messages.add(e.message);
        return true;
      });
    }
    assert.deepEqual([...messages], ['the API token is malformed, unknown or revoked']);
    await assert.rejects(auth.authenticate(undefined), /needs an API token/);
  });

  it('writes last use at most once per interval', async () => {
    let now = Date.parse('2031-01-01T00:00:00Z');
    const auth = new TokenAuthenticator(h.store, { touchIntervalMs: 60_000, now: () => now });
    const lastUsed = async (): Promise<string | undefined> =>
      (await h.store.tokens.list()).find((t) => t.name === 'auditor')?.lastUsedAt?.toISOString();
    await auth.authenticate(`Bearer ${h.tokens.auditor}`);
    assert.equal(await lastUsed(), '2031-01-01T00:00:00.000Z');
    now += 30_000;
    await auth.authenticate(`Bearer ${h.tokens.auditor}`);
    assert.equal(await lastUsed(), '2031-01-01T00:00:00.000Z');
    now += 31_000;
    await auth.authenticate(`Bearer ${h.tokens.auditor}`);
    assert.equal(await lastUsed(), '2031-01-01T00:01:01.000Z');
  });

  it('creates a token through the API that works at once, shows it only in that response, and revokes it', async () => {
    const created = await h.api.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      headers: h.auth('admin'),
      payload: { name: 'console-bob', role: 'operator', grants: ['reveal'] },
    });
    assert.equal(created.statusCode, 201, created.body);
    const body = created.json<{ token: string; name: string; role: string; grants: string[]; createdBy: string }>();
    assert.match(body.token, /^scs_/);
    assert.deepEqual(
      [body.name, body.role, body.grants, body.createdBy],
      ['console-bob', 'operator', ['reveal'], 'api:admin'],
    );
    const me = await h.api.inject({
      method: 'GET',
      url: '/api/v1/me',
      headers: { authorization: `Bearer ${body.token}` },
    });
    assert.deepEqual(me.json<{ name: string; permissions: string[] }>().name, 'console-bob');
    assert.ok(me.json<{ permissions: string[] }>().permissions.includes('secret.reveal'));
    const list = await h.api.inject({ method: 'GET', url: '/api/v1/tokens', headers: h.auth('admin') });
    assert.ok(!list.body.includes(body.token));
    assert.ok(!list.body.includes(hashToken(body.token)));
    assert.ok(list.json<{ items: { name: string }[] }>().items.some((t) => t.name === 'console-bob'));
    const revoked = await h.api.inject({
      method: 'DELETE',
      url: '/api/v1/tokens/console-bob',
      headers: h.auth('admin'),
    });
    assert.equal(revoked.statusCode, 200);
    assert.notEqual(revoked.json<{ revokedAt: string | null }>().revokedAt, null);
    const after = await h.api.inject({
      method: 'GET',
      url: '/api/v1/me',
      headers: { authorization: `Bearer ${body.token}` },
    });
    assert.equal(after.statusCode, 401);
    const actions = (await h.store.audit.list({ limit: 5 })).map((e) => [e.action, e.actor, e.detail.name]);
    assert.deepEqual(actions.slice(0, 2), [
      ['token.revoke', 'api:admin', 'console-bob'],
      ['token.create', 'api:admin', 'console-bob'],
    ]);
    const again = await h.api.inject({ method: 'DELETE', url: '/api/v1/tokens/console-bob', headers: h.auth('admin') });
    assert.equal(again.json<{ code: string }>().code, 'SCS_TOKEN_NOT_FOUND');
  });

  it('refuses a viewer with the reveal grant, a taken name and an unknown role', async () => {
    const post = (payload: Record<string, unknown>) =>
      h.api.inject({ method: 'POST', url: '/api/v1/tokens', headers: h.auth('admin'), payload });
    const viewer = await post({ name: 'v2', role: 'viewer', grants: ['reveal'] });
    assert.equal(viewer.statusCode, 400);
    assert.match(viewer.json<{ detail: string }>().detail, /cannot hold the reveal grant/);
    const taken = await post({ name: 'viewer', role: 'viewer' });
    assert.equal(taken.statusCode, 409);
    assert.equal(taken.json<{ code: string }>().code, 'SCS_TOKEN_NAME_TAKEN');
    const role = await post({ name: 'r', role: 'root' });
    assert.equal(role.statusCode, 400);
  });
});
