import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isScsError } from '../errors.ts';
import { generatePid, generatePps } from '../psk/generate.ts';
import { Secret } from '../secret.ts';
import { openStore } from '../store/open.ts';
import { freshSchema, pgTestServer, type FreshSchema } from '../store/postgres/test-server.ts';
import type { Io } from './io.ts';
import { buildProgram } from './program.ts';

function capture(): Io & { outs: string[]; errs: string[] } {
  const io = {
    outs: [] as string[],
    errs: [] as string[],
    isTty: false,
    out: (line: string) => io.outs.push(line),
    err: (line: string) => io.errs.push(line),
    setExitCode: () => undefined,
  };
  return io;
}

const server = await pgTestServer();

describe('amt-scs db migrate', { skip: server.skip }, () => {
  let dir: string;
  let fresh: FreshSchema;
  const psks = Array.from({ length: 2500 }, () => ({ pid: generatePid(), pps: new Secret(generatePps()) }));
  const file = (): string => path.join(dir, 'scs.db');
  const masterKeyFile = (): string => path.join(dir, 'master.key');
  const run = async (...args: string[]): Promise<ReturnType<typeof capture>> => {
    const io = capture();
    await buildProgram(io).parseAsync(['node', 'amt-scs', '--data-dir', dir, '--log-level', 'silent', 'db', ...args]);
    return io;
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'scs-db-migrate-'));
    fresh = await freshSchema(server.url as string);
    // A SQLite installation with PSKs in several states, a job, a token and a revealed PPS.
    const { store } = await openStore({ db: `sqlite:${file()}`, masterKeyFile: masterKeyFile() });
    await store.psks.insertMany(
      psks.map((p) => ({ ...p, batch: 'lab' })),
      { actor: 'test', source: 'generate' },
    );
    const [first, second] = psks;
    assert.ok(first && second);
    await store.psks.transition({ pids: [first.pid], from: ['available'], to: 'revoked', actor: 'test' });
    await store.psks.reveal(second.pid, { actor: 'test', purpose: 'check' });
    await store.jobs.create(
      { deviceUuid: '4c4c4544-0035-5910-8051-b8c04f4e5a31', pid: second.pid, address: '10.0.0.5', profile: 'default' },
      { actor: 'test' },
    );
    await store.tokens.create({ name: 'ops', role: 'operator', grants: [], hash: 'b'.repeat(64) }, { actor: 'test' });
    await store.close();
  });
  after(async () => {
    await fresh.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('copies every table, keeps PSKs sealed under the same master key and the audit chain valid, and says so', async () => {
    const io = await run('migrate', '--from', file(), '--to', fresh.url);
    assert.match(io.outs.join('\n'), /counts verified; 2500 PSKs .* audit chain verified/);
    assert.ok(
      io.errs.some((l) => /psks: 2500\/2500/.test(l)),
      io.errs.join('\n'),
    );
    const raw = await fresh.query('select count(*)::int as n from psks');
    assert.equal(raw[0]?.n, 2500);
    const { store } = await openStore({ db: fresh.url, masterKeyFile: masterKeyFile() });
    try {
      const [first, second, third] = psks;
      assert.ok(first && second && third);
      assert.equal((await store.psks.get(first.pid))?.state, 'revoked');
      assert.equal(
        (await store.psks.reveal(third.pid, { actor: 'test', purpose: 'check' })).reveal(),
        third.pps.reveal(),
      );
      assert.equal((await store.jobs.unfinished()).length, 1);
      assert.equal(await store.tokens.countActive(), 1);
      // New rows continue after the copied ids, and the chain goes on from the copied head.
      const pid = generatePid();
      await store.psks.insertMany([{ pid, pps: new Secret(generatePps()), batch: 'lab' }], {
        actor: 't',
        source: 'generate',
      });
      assert.ok(((await store.psks.get(pid))?.id ?? 0) > 2500);
      const v = await store.audit.verify();
      assert.ok(v.ok, JSON.stringify(v));
    } finally {
      await store.close();
    }
    // No PPS in clear in the target.
    const dump = JSON.stringify(await fresh.query('select encode(pps, $1) as p from psks', ['escape']));
    assert.ok(!psks.slice(0, 50).some((p) => dump.includes(p.pps.reveal())));
  });

  it('refuses a target that holds data unless --force is given', async () => {
    await assert.rejects(run('migrate', '--from', file(), '--to', fresh.url), (e) =>
      isScsError(e, 'SCS_ARGUMENT_INVALID'),
    );
    const io = await run('migrate', '--from', file(), '--to', fresh.url, '--force');
    assert.match(io.outs.join('\n'), /counts verified/);
    const raw = await fresh.query('select count(*)::int as n from psks');
    assert.equal(raw[0]?.n, 2500);
  });
});
