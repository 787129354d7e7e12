import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Io } from '../../src/cli/io.ts';
import { buildProgram } from '../../src/cli/program.ts';
import { isScsError } from '../../src/errors.ts';
import { addPsks, fleetFor, randomPort, startTestScs } from './harness.ts';

/**
 * The provisioning commands in process: profile, device, job and demo, against a data
 * directory a real server and simulated device filled.
 */

function capture(): Io & { outs: string[]; errs: string[]; code: number } {
  const io = {
    outs: [] as string[],
    errs: [] as string[],
    code: 0,
    isTty: false,
    out: (line: string) => void io.outs.push(line),
    err: (line: string) => void io.errs.push(line),
    setExitCode: (code: number) => void (io.code = code),
  };
  return io;
}

async function run(dir: string, ...args: string[]): Promise<ReturnType<typeof capture>> {
  const io = capture();
  await buildProgram(io).parseAsync(['node', 'amt-scs', '--data-dir', dir, '--log-level', 'silent', ...args]);
  return io;
}

describe('amt-scs profile', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'scs-cli-profile-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('creates, changes, shows, binds and deletes profiles; passwords only from env or file and never printed', async () => {
    process.env.H6_TEST_MEBX = 'Mebx-Cl1-pw!';
    try {
      const created = await run(
        dir,
        'profile',
        'create',
        'lab',
        '--domain',
        'lab.example',
        '--tls',
        'off',
        '--current-mebx-password-env',
        'H6_TEST_MEBX',
      );
      assert.match(created.outs.join('\n'), /profile lab \(version 1/);
      assert.match(created.outs.join('\n'), /currentMebxPassword=set/);
      assert.ok(!created.outs.join('\n').includes('Mebx-Cl1-pw!'));
      const set = await run(dir, 'profile', 'set', 'lab', '--admin-user', 'scsadmin', '--expect-version', '1');
      assert.match(set.outs.join('\n'), /version 2/);
      const shown = await run(dir, 'profile', 'show', 'lab', '--json');
      const json = JSON.parse(shown.outs.join('\n')) as {
        settings: { adminUser: string; tls: boolean; domainName: string };
      };
      assert.deepEqual(
        [json.settings.adminUser, json.settings.tls, json.settings.domainName],
        ['scsadmin', false, 'lab.example'],
      );
      const listed = await run(dir, 'profile', 'list');
      assert.deepEqual(
        listed.outs.map((l) => l.split(/\s+/)[0]),
        ['default', 'lab'],
      );
      await assert.rejects(run(dir, 'profile', 'set', 'lab', '--tls', 'on', '--expect-version', '1'), (e) =>
        isScsError(e, 'SCS_PROFILE_CONFLICT'),
      );
      await assert.rejects(
        run(dir, 'profile', 'set', 'lab', '--host-name-pattern', 'amt_{uuid}'),
        (e) => isScsError(e, 'SCS_PROFILE_INVALID') && /hostNamePattern/.test(e.message),
      );
      await assert.rejects(
        run(dir, 'profile', 'set', 'lab', '--current-mebx-password-env', 'H6_NOT_SET'),
        (e) => isScsError(e, 'SCS_ARGUMENT_INVALID') && /H6_NOT_SET/.test(e.message),
      );
      await assert.rejects(run(dir, 'profile', 'bind', 'lab', 'no-such-batch'), (e) =>
        isScsError(e, 'SCS_BATCH_NOT_FOUND'),
      );
      await run(dir, 'psk', 'generate', '--count', '2', '--batch', 'b-lab');
      await run(dir, 'profile', 'bind', 'lab', 'b-lab');
      await assert.rejects(run(dir, 'profile', 'delete', 'lab'), (e) => isScsError(e, 'SCS_PROFILE_INVALID'));
      await run(dir, 'profile', 'unbind', 'b-lab');
      const deleted = await run(dir, 'profile', 'delete', 'lab');
      assert.deepEqual(deleted.outs, ['deleted profile lab']);
    } finally {
      delete process.env.H6_TEST_MEBX;
    }
  });
});

describe('amt-scs device and job', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'scs-cli-device-'));
  let uuid = '';
  before(async () => {
    const port = randomPort();
    const scs = await startTestScs({ amtTlsPort: port, dir });
    const psks = await addPsks(scs.store, 1, 'lab');
    await addPsks(scs.store, 1, 'lab', 'available');
    const fleet = await fleetFor(scs, psks, port);
    try {
      const [f] = await scs.waitFinished(1);
      assert.equal(f?.state, 'succeeded');
      uuid = f.job.deviceUuid;
    } finally {
      await fleet.stop();
      await scs.stop();
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('lists and shows the device with its history, and reveals its admin password (audited)', async () => {
    const list = await run(dir, 'device', 'list');
    assert.equal(list.outs.length, 1);
    assert.match(list.outs[0] ?? '', new RegExp(`^${uuid}  provisioned`));
    assert.match(list.errs.join('\n'), /provisioned 1/);
    const show = await run(dir, 'device', 'show', uuid.toUpperCase());
    const text = show.outs.join('\n');
    assert.match(text, /state +provisioned/);
    assert.match(text, /certificate +SHA-256 [0-9a-f]{64}/);
    assert.match(text, /job.succeeded/);
    assert.match(text, /#\d+ succeeded step commit/);
    const revealed = await run(dir, 'device', 'reveal-password', uuid, '--reason', 'test');
    const [user, password] = (revealed.outs[0] ?? '').split(' ');
    assert.equal(user, 'admin');
    assert.ok((password ?? '').length >= 16);
    assert.ok(!text.includes(password ?? '-'), 'show never prints the password');
    const audit = await run(dir, 'audit', 'list', '--action', 'device.reveal_password', '--json');
    const entries = JSON.parse(audit.outs.join('\n')) as { detail: { uuid: string; reason: string } }[];
    assert.equal(entries[0]?.detail.uuid, uuid);
    assert.equal(entries[0]?.detail.reason, 'test');
    await assert.rejects(run(dir, 'device', 'show', 'not-a-uuid'), (e) => isScsError(e, 'SCS_ARGUMENT_INVALID'));
    await assert.rejects(run(dir, 'device', 'show', '00000000-0000-4000-8000-000000000000'), (e) =>
      isScsError(e, 'SCS_DEVICE_NOT_FOUND'),
    );
  });

  it('lists jobs with their state and step', async () => {
    const jobs = await run(dir, 'job', 'list', '--state', 'succeeded');
    assert.equal(jobs.outs.length, 1);
    assert.match(jobs.outs[0] ?? '', /succeeded .* step commit/);
    const json = await run(dir, 'job', 'list', '--json', '--device', uuid);
    assert.equal((JSON.parse(json.outs.join('\n')) as unknown[]).length, 1);
    await assert.rejects(run(dir, 'job', 'list', '--state', 'done'), (e) => isScsError(e, 'SCS_ARGUMENT_INVALID'));
  });
});

describe('amt-scs demo', () => {
  it('provisions a small simulated fleet end to end and exits 0', async () => {
    const io = capture();
    await buildProgram(io).parseAsync(['node', 'amt-scs', 'demo', '--devices', '3']);
    assert.equal(io.code, 0, io.errs.join('\n'));
    assert.match(io.outs[0] ?? '', /^all 3 of 3 devices provisioned and verified/);
    assert.equal(io.outs.filter((l) => / provisioned +\d+ ms/.test(l)).length, 3);
  });

  it('exits 1 and names the reason when a device cannot be provisioned', async () => {
    const io = capture();
    await buildProgram(io).parseAsync([
      'node',
      'amt-scs',
      'demo',
      '--devices',
      '2',
      '--faults',
      'wrong-psk:50%',
      '--deadline',
      '4',
    ]);
    assert.equal(io.code, 1);
    assert.match(io.outs.join('\n'), /1 of 2 devices provisioned/);
    assert.match(io.outs.join('\n'), /failed .*SCS_TLS_BAD_KEY/);
  });
});
