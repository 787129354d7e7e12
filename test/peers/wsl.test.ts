import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MEBX_PASSWORD, missing, run, startPeerDevice, URI, type PeerDevice } from './helpers.ts';
import { replyBody, replyHeader, text } from './wsman-client.ts';

/**
 * Dell's `wsl` ("whistle"), a WS-Management client written in shell, as a client of the device's
 * plain HTTP port. It reads its target from the environment (WSENDPOINT, WSUSER, WSPASS), its
 * options from ~/.wsl-config and the environment (WSNOSSL for http, USEWGET so that wget does
 * the Digest exchange: wsl's curl command line sends Basic only), and writes request-N.xml /
 * response-N.xml under OUTPREFIX. Each run gets a temporary HOME and working directory, and
 * KEEPHISTORY=0 so that it writes no .wslrun holding the password.
 */
const skip = missing('wsl') ?? missing('wget') ?? missing('xmllint');
if (skip !== undefined) console.log(`# skipping wsl interop: ${skip}`);

describe('Dell wsl against a simulated device over HTTP', { skip }, () => {
  let d: PeerDevice;
  let dir: string;
  let runs = 0;

  before(async () => {
    d = await startPeerDevice('127.214.0.1');
    dir = await mkdtemp(path.join(tmpdir(), 'amt-peer-wsl-'));
  });
  after(async () => {
    await d.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs wsl in a fresh directory (its HOME and OUTPREFIX); returns the directory and the result. */
  async function wsl(
    args: string[],
    password = MEBX_PASSWORD,
  ): Promise<{ out: string; code: number | null; stdout: string }> {
    const out = path.join(dir, `run-${++runs}`);
    const bin = path.join(out, 'bin');
    await mkdir(bin, { recursive: true });
    // wsl makes MessageIDs with uuidgen (package uuid-runtime); without it they are empty. A
    // stand-in keeps requests realistic on machines without it.
    if (missing('uuidgen') !== undefined) {
      await writeFile(path.join(bin, 'uuidgen'), '#!/bin/sh\ncat /proc/sys/kernel/random/uuid\n');
      await chmod(path.join(bin, 'uuidgen'), 0o755);
    }
    const env: NodeJS.ProcessEnv = {
      PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      HOME: out,
      WSENDPOINT: `${d.host}:${d.httpPort}`,
      WSUSER: 'admin',
      WSPASS: password,
      WSNOSSL: 'true',
      USEWGET: 'true',
      WGETTIMEOUTSECS: '10',
      KEEPHISTORY: '0',
      WSAUTOMATED: '1',
      OUTPREFIX: out,
      OUTLEVEL: '1',
    };
    const r = await run('wsl', args, { env, cwd: out, timeoutMs: 60_000 });
    assert.equal(r.timedOut, false, 'wsl finished');
    return { out, code: r.code, stdout: r.stdout };
  }

  it("gets AMT_GeneralSettings by its InstanceID selector; the reply relates to wsl's MessageID", async () => {
    const r = await wsl(['get', URI.amt('AMT_GeneralSettings'), 'InstanceID=Intel(r) AMT: General Settings']);
    // wsl exits 0 when the reply holds the selector's property (grep ":InstanceID").
    assert.equal(r.code, 0, r.stdout);
    const request = await readFile(path.join(r.out, 'request-1.xml'), 'utf8');
    const reply = await readFile(path.join(r.out, 'response.xml'), 'utf8');
    const gs = replyBody(reply).AMT_GeneralSettings as Record<string, string>;
    assert.equal(gs.InstanceID, 'Intel(r) AMT: General Settings');
    assert.equal(gs.DigestRealm, d.device.digestRealm);
    const messageId = text(replyHeader(request).MessageID);
    assert.notEqual(messageId, '');
    assert.equal(text(replyHeader(reply).RelatesTo), messageId);
  });

  it('enumerates CIM_SoftwareIdentity in one optimized reply', async () => {
    const r = await wsl(['enum', URI.cim('CIM_SoftwareIdentity')]);
    assert.equal(r.code, 0, r.stdout);
    const files = (await readdir(r.out)).filter((f) => /^response-\d+\.xml$/.test(f));
    assert.deepEqual(files, ['response-1.xml']);
    const reply = await readFile(path.join(r.out, 'response-1.xml'), 'utf8');
    const er = replyBody(reply).EnumerateResponse as { Items: { CIM_SoftwareIdentity: { InstanceID: string }[] } };
    assert.ok(er.Items.CIM_SoftwareIdentity.some((i) => i.InstanceID === 'AMT'));
    assert.ok('EndOfSequence' in er);
  });

  it('enumerates CIM_SoftwareIdentity three at a time, pulling until the context ends', async () => {
    const r = await wsl(['enum', URI.cim('CIM_SoftwareIdentity'), '-opti', '3']);
    assert.equal(r.code, 0, r.stdout);
    const files = (await readdir(r.out)).filter((f) => /^response-\d+\.xml$/.test(f)).sort();
    assert.ok(files.length >= 2, `Enumerate then at least one Pull (${files.join(', ')})`);
    const ids: string[] = [];
    for (const f of files) {
      const body = replyBody(await readFile(path.join(r.out, f), 'utf8'));
      const resp = (body.EnumerateResponse ?? body.PullResponse) as { Items?: { CIM_SoftwareIdentity: unknown } };
      const items = resp.Items?.CIM_SoftwareIdentity;
      const list = (Array.isArray(items) ? items : items === undefined ? [] : [items]) as { InstanceID: string }[];
      assert.ok(list.length <= 3);
      ids.push(...list.map((i) => i.InstanceID));
    }
    assert.ok(ids.includes('AMT'));
    assert.equal(new Set(ids).size, ids.length);
  });

  it('gets nothing with a wrong password (wget gives up after the second 401)', async () => {
    const r = await wsl(
      ['get', URI.amt('AMT_GeneralSettings'), 'InstanceID=Intel(r) AMT: General Settings'],
      'Wrong-Pa55',
    );
    assert.notEqual(r.code, 0);
    const log = await readFile(path.join(r.out, 'log.txt'), 'utf8');
    assert.match(log, /401 Unauthorized/);
    assert.doesNotMatch(await readFile(path.join(r.out, 'response-1.xml'), 'utf8'), /DigestRealm/);
  });
});
