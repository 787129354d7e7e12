import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ACTION, envelope, MEBX_PASSWORD, missing, run, startPeerDevice, URI, type PeerDevice } from './helpers.ts';
import { replyBody, replyHeader, text } from './wsman-client.ts';

/**
 * curl's own HTTP Digest (RFC 2617/7616) against the device's plain HTTP port 16992, POSTing
 * WS-Management envelopes written here by hand (protocol.md §4, §5).
 */
const skip = missing('curl');
if (skip !== undefined) console.log(`# skipping curl interop: ${skip}`);

const STATUS = '\n--HTTP-STATUS %{http_code}';

describe('curl --digest against a simulated device over HTTP', { skip }, () => {
  let d: PeerDevice;
  let dir: string;
  let n = 0;

  before(async () => {
    d = await startPeerDevice('127.213.0.1');
    dir = await mkdtemp(path.join(tmpdir(), 'amt-peer-curl-'));
  });
  after(async () => {
    await d.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** POSTs `xml` with curl; returns the HTTP status and the body. */
  async function curl(xml: string, password = MEBX_PASSWORD): Promise<{ status: number; body: string }> {
    const file = path.join(dir, `request-${++n}.xml`);
    await writeFile(file, xml);
    const r = await run('curl', [
      '--silent',
      '--show-error',
      '--digest',
      '--user',
      `admin:${password}`,
      '--header',
      'Content-Type: application/soap+xml;charset=UTF-8',
      '--data-binary',
      `@${file}`,
      '--write-out',
      STATUS,
      `http://${d.host}:${d.httpPort}/wsman`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const at = r.stdout.lastIndexOf('\n--HTTP-STATUS ');
    return { status: Number(r.stdout.slice(at + 15)), body: r.stdout.slice(0, at) };
  }

  it('Gets AMT_GeneralSettings: 200, RelatesTo our MessageID, the realm of the Digest challenge', async () => {
    const request = envelope(ACTION.get, URI.amt('AMT_GeneralSettings'));
    const messageId = /<a:MessageID[^>]*>([^<]+)</.exec(request)?.[1];
    const reply = await curl(request);
    assert.equal(reply.status, 200);
    const header = replyHeader(reply.body);
    assert.equal(text(header.RelatesTo), messageId);
    assert.equal(text(header.Action), 'http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse');
    const gs = replyBody(reply.body).AMT_GeneralSettings as Record<string, string>;
    assert.equal(gs.InstanceID, 'Intel(r) AMT: General Settings');
    assert.equal(gs.DigestRealm, d.device.digestRealm);
    assert.equal(gs.HostName, 'peer-device');
  });

  it('Enumerates then Pulls CIM_SoftwareIdentity two at a time until EndOfSequence', async () => {
    const started = await curl(
      envelope(
        ACTION.enumerate,
        URI.cim('CIM_SoftwareIdentity'),
        '<n:Enumerate xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration"/>',
      ),
    );
    assert.equal(started.status, 200);
    let context = text((replyBody(started.body).EnumerateResponse as Record<string, unknown>).EnumerationContext);
    assert.notEqual(context, '');
    const ids: string[] = [];
    const versions = new Map<string, string>();
    for (let round = 0; round < 20; round++) {
      const pulled = await curl(
        envelope(
          ACTION.pull,
          URI.cim('CIM_SoftwareIdentity'),
          '<n:Pull xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration">' +
            `<n:EnumerationContext>${context}</n:EnumerationContext><n:MaxElements>2</n:MaxElements></n:Pull>`,
        ),
      );
      assert.equal(pulled.status, 200);
      const pr = replyBody(pulled.body).PullResponse as Record<string, unknown>;
      const items = (pr.Items as { CIM_SoftwareIdentity: unknown } | undefined)?.CIM_SoftwareIdentity;
      const list = (Array.isArray(items) ? items : [items]) as { InstanceID: string; VersionString: string }[];
      assert.ok(list.length >= 1 && list.length <= 2, `MaxElements 2 respected (got ${list.length})`);
      for (const i of list) {
        ids.push(i.InstanceID);
        versions.set(i.InstanceID, i.VersionString);
      }
      if ('EndOfSequence' in pr) {
        assert.equal(pr.EnumerationContext, undefined);
        break;
      }
      context = text(pr.EnumerationContext);
    }
    assert.ok(ids.includes('AMT'), `instances: ${ids.join(', ')}`);
    assert.equal(versions.get('AMT'), '6.2.0');
    assert.equal(new Set(ids).size, ids.length, 'no instance twice');
  });

  it('answers 401 with a fresh Digest challenge when the password is wrong', async () => {
    const reply = await curl(envelope(ACTION.get, URI.amt('AMT_GeneralSettings')), 'Wrong-Pa55');
    assert.equal(reply.status, 401);
    assert.doesNotMatch(reply.body, /AMT_GeneralSettings/);
  });
});
