import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { missing, run, startPeerDevice, type PeerDevice } from './helpers.ts';

/**
 * OpenSSL's s_client as the TLS-PSK client of a simulated device (protocol.md §3): identity =
 * the PID, key = hex of the 32 PPS ASCII bytes. It sends an unauthenticated POST /wsman over the
 * session; the device's 401 Digest challenge proves application data flowed both ways.
 */
const skip = missing('openssl');
if (skip !== undefined) console.log(`# skipping OpenSSL interop: ${skip}`);

const REQUEST = 'POST /wsman HTTP/1.1\r\nHost: device\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';

describe('openssl s_client against a simulated device', { skip }, () => {
  let d: PeerDevice;
  before(async () => {
    d = await startPeerDevice('127.211.0.1');
  });
  after(async () => {
    await d.stop();
  });

  const sClient = (version: string, identity: string, keyHex: string, cipher: string) =>
    run(
      'openssl',
      [
        's_client',
        '-connect',
        `${d.host}:${d.tlsPort}`,
        version,
        '-psk_identity',
        identity,
        '-psk',
        keyHex,
        '-cipher',
        cipher,
        '-ign_eof',
      ],
      { input: REQUEST },
    );

  for (const [flag, protocol] of [
    ['-tls1', 'TLSv1'],
    ['-tls1_2', 'TLSv1.2'],
  ] as const) {
    it(`completes a ${protocol} PSK-AES128-CBC-SHA handshake and carries HTTP (${flag})`, async () => {
      const r = await sClient(flag, d.pid, d.ppsHex, 'PSK-AES128-CBC-SHA');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`Protocol\\s*: ${protocol.replace('.', '\\.')}\\n`));
      assert.match(r.stdout, /Cipher\s*: PSK-AES128-CBC-SHA\n/);
      assert.match(r.stdout, /HTTP\/1\.1 401 Unauthorized/);
      assert.match(
        r.stdout,
        /WWW-Authenticate: Digest realm="Digest:[0-9A-F]{32}", nonce="[^"=]+",stale="false",qop="auth"/,
      );
    });
  }

  it('negotiates a TLS 1.2 GCM PSK suite when offered every PSK suite', async () => {
    const r = await sClient('-tls1_2', d.pid, d.ppsHex, 'PSK');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Cipher\s*: PSK-AES256-GCM-SHA384\n/);
  });

  it('fails with alert 20 (bad record mac) when the key is wrong', async () => {
    const wrong = Buffer.from('0'.repeat(32), 'ascii').toString('hex');
    const r = await sClient('-tls1_2', d.pid, wrong, 'PSK-AES128-CBC-SHA');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /alert bad record mac/);
    assert.match(r.stderr, /SSL alert number 20\b/);
    assert.doesNotMatch(r.stdout, /HTTP\/1\.1/);
  });

  it('fails with alert 115 (unknown psk identity) for a PID the device does not hold', async () => {
    const r = await sClient('-tls1', 'ZZZZZZZZ', d.ppsHex, 'PSK-AES128-CBC-SHA');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /alert unknown psk identity/);
    assert.match(r.stderr, /SSL alert number 115\b/);
  });

  it('refuses TLS 1.3 with alert 70 (protocol version): PSK devices stop at 1.2', async () => {
    const r = await run(
      'openssl',
      ['s_client', '-connect', `${d.host}:${d.tlsPort}`, '-tls1_3', '-psk_identity', d.pid, '-psk', d.ppsHex],
      {
        input: REQUEST,
      },
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /alert protocol version/);
    assert.match(r.stderr, /SSL alert number 70\b/);
  });
});
