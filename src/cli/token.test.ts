import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TokenAuthenticator } from '../api/tokens.ts';
import { isScsError } from '../errors.ts';
import { openStore } from '../store/open.ts';
import type { Io } from './io.ts';
import { buildProgram } from './program.ts';

function capture(): Io & { outs: string[]; errs: string[]; code: number } {
  const io = {
    outs: [] as string[],
    errs: [] as string[],
    code: 0,
    isTty: false,
    out: (line: string) => io.outs.push(line),
    err: (line: string) => io.errs.push(line),
    setExitCode: (code: number) => (io.code = code),
  };
  return io;
}

describe('amt-scs token', () => {
  let dir: string;
  const run = async (...args: string[]): Promise<ReturnType<typeof capture>> => {
    const io = capture();
    await buildProgram(io).parseAsync([
      'node',
      'amt-scs',
      '--data-dir',
      dir,
      '--log-level',
      'silent',
      'token',
      ...args,
    ]);
    return io;
  };
  const authenticate = async (token: string) => {
    const { store } = await openStore({
      db: `sqlite:${path.join(dir, 'scs.db')}`,
      masterKeyFile: path.join(dir, 'master.key'),
    });
    try {
      return await new TokenAuthenticator(store).authenticate(`Bearer ${token}`);
    } finally {
      await store.close();
    }
  };
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'scs-token-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a token, prints only the token on stdout, and the token authenticates with its role and grants', async () => {
    const io = await run('create', '--name', 'ops-1', '--role', 'operator', '--grant', 'reveal');
    assert.equal(io.outs.length, 1);
    const token = io.outs[0] ?? '';
    assert.match(token, /^scs_[A-Za-z0-9_-]{43}$/);
    assert.match(io.errs.join('\n'), /created API token "ops-1" \(operator \+ reveal\); it is shown only this once/);
    const p = await authenticate(token);
    assert.deepEqual([p.name, p.role, [...p.grants], p.actor], ['ops-1', 'operator', ['reveal'], 'api:ops-1']);
  });

  it('lists tokens without the token text, and as JSON', async () => {
    const table = await run('list');
    assert.match(table.outs.join('\n'), /ops-1\s+operator\s+reveal/);
    assert.ok(!table.outs.join('\n').includes('scs_'));
    const json = await run('list', '--json');
    const rows = JSON.parse(json.outs.join('\n')) as { name: string; role: string; grants: string[] }[];
    assert.deepEqual(
      rows.map((r) => [r.name, r.role, r.grants]),
      [['ops-1', 'operator', ['reveal']]],
    );
  });

  it('refuses a viewer with the reveal grant, an unknown role and a taken name', async () => {
    await assert.rejects(
      run('create', '--name', 'v', '--role', 'viewer', '--grant', 'reveal'),
      /cannot hold the reveal grant/,
    );
    await assert.rejects(
      run('create', '--name', 'v', '--role', 'root'),
      /role must be one of admin, operator, auditor, viewer/,
    );
    await assert.rejects(run('create', '--name', 'ops-1', '--role', 'viewer'), (e) =>
      isScsError(e, 'SCS_TOKEN_NAME_TAKEN'),
    );
    await assert.rejects(run('create', '--name', '-bad name', '--role', 'viewer'), (e) =>
      isScsError(e, 'SCS_ARGUMENT_INVALID'),
    );
  });

  it('revokes a token so it no longer authenticates, and says so for an unknown name', async () => {
    const created = await run('create', '--name', 'short-lived', '--role', 'viewer');
    const token = created.outs[0] ?? '';
    assert.equal((await authenticate(token)).name, 'short-lived');
    const io = await run('revoke', 'short-lived', '--reason', 'test over');
    assert.deepEqual(io.outs, ['revoked API token "short-lived" (viewer)']);
    await assert.rejects(authenticate(token), (e) => isScsError(e, 'SCS_UNAUTHENTICATED'));
    await assert.rejects(run('revoke', 'short-lived'), (e) => isScsError(e, 'SCS_TOKEN_NOT_FOUND'));
    const all = await run('list', '--all', '--json');
    assert.ok((JSON.parse(all.outs.join('\n')) as { revokedAt: string | null }[]).some((r) => r.revokedAt !== null));
  });
});
