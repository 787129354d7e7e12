import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { missing, run, startPeerDevice, type PeerDevice } from './helpers.ts';

/**
 * GnuTLS (a TLS stack that shares no code with OpenSSL, which Node and so the simulator use) as
 * the TLS-PSK client: `--pskusername` = PID, `--pskkey` = hex of the 32 PPS ASCII bytes.
 */
const skip = missing('gnutls-cli');
if (skip !== undefined) console.log(`# skipping GnuTLS interop: ${skip}`);

const REQUEST = 'POST /wsman HTTP/1.1\r\nHost: device\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';

describe('gnutls-cli against a simulated device', { skip }, () => {
  let d: PeerDevice;
  before(async () => {
    d = await startPeerDevice('127.212.0.1');
  });
  after(async () => {
    await d.stop();
  });

  const cli = (priority: string, keyHex: string) =>
    run(
      'gnutls-cli',
      ['--pskusername', d.pid, '--pskkey', keyHex, '--priority', priority, '-p', String(d.tlsPort), d.host],
      { input: REQUEST },
    );

  it('completes a TLS 1.0 PSK handshake with AES-128-CBC/SHA1 (what AMT 2.x-10.x firmware needs)', async () => {
    const r = await cli('NORMAL:-KX-ALL:+PSK:-VERS-ALL:+VERS-TLS1.0:-CIPHER-ALL:+AES-128-CBC:-MAC-ALL:+SHA1', d.ppsHex);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Description: \(TLS1\.0[^)]*\)-\(PSK\)-\(AES-128-CBC\)-\(SHA1\)/);
    assert.match(r.stdout, new RegExp(`PSK authentication\\. Connected as '${d.pid}'`));
    assert.match(r.stdout, /HTTP\/1\.1 401 Unauthorized/);
  });

  it('completes a TLS 1.2 PSK handshake and carries HTTP', async () => {
    const r = await cli('NORMAL:-KX-ALL:+PSK:-VERS-ALL:+VERS-TLS1.2', d.ppsHex);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Description: \(TLS1\.2[^)]*\)-\(PSK\)-\(AES-256-GCM\)/);
    assert.match(r.stdout, /HTTP\/1\.1 401 Unauthorized/);
  });

  it('fails with alert 20 (Bad record MAC) when the key is wrong', async () => {
    const r = await cli('NORMAL:-KX-ALL:+PSK:-VERS-ALL:+VERS-TLS1.2', Buffer.from('1'.repeat(32)).toString('hex'));
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /Received alert \[20\]: Bad record MAC/);
    assert.match(r.stderr, /A TLS fatal alert has been received/);
    assert.doesNotMatch(r.stdout, /HTTP\/1\.1/);
  });

  it('fails at TLS 1.0 too when the key is wrong', async () => {
    const r = await cli('NORMAL:-KX-ALL:+PSK:-VERS-ALL:+VERS-TLS1.0', Buffer.from('1'.repeat(32)).toString('hex'));
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /Received alert \[20\]: Bad record MAC/);
  });
});
