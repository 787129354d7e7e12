import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isScsError } from '../../errors.ts';
import { openStore } from '../open.ts';
import type { Store } from '../store.ts';

function digest(): string {
  return createHash('sha256').update(randomBytes(32)).digest('hex');
}

describe('API token store (SQLite)', () => {
  let dir: string;
  let store: Store;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'scs-tokens-'));
    ({ store } = await openStore({
      db: `sqlite:${path.join(dir, 'scs.db')}`,
      masterKeyFile: path.join(dir, 'master.key'),
    }));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores a token by its hash and finds it again by that hash only while active', async () => {
    const hash = digest();
    const row = await store.tokens.create(
      { name: 'ci', role: 'operator', grants: ['reveal'], hash },
      { actor: 'cli:alice' },
    );
    assert.equal(row.name, 'ci');
    assert.equal(row.role, 'operator');
    assert.deepEqual(row.grants, ['reveal']);
    assert.equal(row.createdBy, 'cli:alice');
    assert.equal(row.revokedAt, null);
    const found = await store.tokens.findActiveByHash(hash);
    assert.equal(found?.name, 'ci');
    assert.equal(found.hash, hash);
    assert.equal(await store.tokens.findActiveByHash(digest()), undefined);
    assert.equal(await store.tokens.countActive(), 1);
    await store.tokens.revoke('ci', { actor: 'cli:alice' });
    assert.equal(await store.tokens.findActiveByHash(hash), undefined);
    assert.equal(await store.tokens.countActive(), 0);
  });

  it('refuses a second active token with the same name, and allows the name again after revocation', async () => {
    await store.tokens.create({ name: 'ci', role: 'viewer', grants: [], hash: digest() }, { actor: 't' });
    await assert.rejects(
      store.tokens.create({ name: 'ci', role: 'admin', grants: [], hash: digest() }, { actor: 't' }),
      (e) => isScsError(e, 'SCS_TOKEN_NAME_TAKEN'),
    );
    await store.tokens.revoke('ci', { actor: 't' });
    await store.tokens.create({ name: 'ci', role: 'admin', grants: [], hash: digest() }, { actor: 't' });
    const all = await store.tokens.list({ includeRevoked: true });
    assert.deepEqual(
      all.map((t) => [t.name, t.role, t.revokedAt === null]),
      [
        ['ci', 'viewer', false],
        ['ci', 'admin', true],
      ],
    );
    assert.deepEqual(
      (await store.tokens.list()).map((t) => t.role),
      ['admin'],
    );
  });

  it('fails to revoke a name with no active token', async () => {
    await assert.rejects(store.tokens.revoke('nobody', { actor: 't' }), (e) => isScsError(e, 'SCS_TOKEN_NOT_FOUND'));
  });

  it('audits create and revoke with the actor, name and role, and never the hash', async () => {
    const hash = digest();
    await store.tokens.create({ name: 'ops', role: 'operator', grants: [], hash }, { actor: 'api:admin' });
    await store.tokens.revoke('ops', { actor: 'api:admin', reason: 'left' });
    const entries = await store.audit.list({ order: 'asc' });
    assert.deepEqual(
      entries.map((e) => [e.action, e.actor, e.detail.name, e.detail.role]),
      [
        ['token.create', 'api:admin', 'ops', 'operator'],
        ['token.revoke', 'api:admin', 'ops', 'operator'],
      ],
    );
    assert.equal(entries[1]?.detail.reason, 'left');
    assert.ok(!JSON.stringify(entries).includes(hash));
    assert.equal((await store.audit.verify()).ok, true);
  });

  it('joins the caller transaction: a failure later in it leaves no token behind', async () => {
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.tokens.create({ name: 'tmp', role: 'viewer', grants: [], hash: digest() }, { actor: 't' });
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await store.tokens.countActive(), 0);
    assert.equal((await store.audit.list()).length, 0);
  });

  it('records last use without an audit entry', async () => {
    const row = await store.tokens.create({ name: 'u', role: 'viewer', grants: [], hash: digest() }, { actor: 't' });
    const at = new Date('2030-01-02T03:04:05.678Z');
    await store.tokens.markUsed(row.id, at);
    const [listed] = await store.tokens.list();
    assert.equal(listed?.lastUsedAt?.toISOString(), at.toISOString());
    assert.equal((await store.audit.list()).length, 1);
  });

  it('rejects a role the schema does not know, even past the type system', async () => {
    await store.close();
    const side = new Database(path.join(dir, 'scs.db'));
    try {
      assert.throws(
        () =>
          side
            .prepare(
              `insert into api_tokens (name, role, grants, hash, created_at, created_by) values (?, ?, '', ?, '', '')`,
            )
            .run('x', 'root', digest()),
        /CHECK constraint/,
      );
    } finally {
      side.close();
    }
    ({ store } = await openStore({
      db: `sqlite:${path.join(dir, 'scs.db')}`,
      masterKeyFile: path.join(dir, 'master.key'),
    }));
  });
});
