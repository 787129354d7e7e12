import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import tls, { type SecureVersion } from 'node:tls';
import { AMT } from '@device-management-toolkit/wsman-messages';
import { isScsError } from '../../src/errors.ts';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import { DigestClient, formatAuthorization, type DigestParams } from '../http/digest-client.ts';
import { pooledKeyPairs } from '../wsman/test-harness.ts';
import { SimDevice, type SimDeviceOptions } from './device.ts';
import { PSK_CIPHERS } from './tls.ts';

const MEBX = 'P@ssw0rd';
const IDENTIFY =
  '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"><s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>';

const running: SimDevice[] = [];
after(async () => {
  await Promise.all(running.map((d) => d.stop()));
});

async function startDevice(opts: SimDeviceOptions = {}, host = '127.0.0.1') {
  const pid = generatePid();
  const pps = generatePps();
  const device = new SimDevice(
    { uuid: '8f2a0c4e-51b3-4d9e-a6f7-0123456789ab', pid, pps, mebxPassword: MEBX },
    { keyPairProvider: pooledKeyPairs(), ...opts },
  );
  running.push(device);
  const ports = await device.start({ host, tlsPort: 0, httpPort: 0 });
  return { device, ports, pid, pps, host };
}

type HandshakeResult = { ok: true; protocol: string; cipher: string } | { ok: false; code: string };

function handshake(
  port: number,
  identity: string,
  key: string,
  opts: { min?: SecureVersion; max?: SecureVersion; ciphers?: string; host?: string } = {},
): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    const s = tls.connect({
      host: opts.host ?? '127.0.0.1',
      port,
      ciphers: opts.ciphers ?? PSK_CIPHERS.join(':'),
      minVersion: opts.min ?? 'TLSv1',
      maxVersion: opts.max ?? 'TLSv1.2',
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ identity, psk: Buffer.from(key, 'ascii') }),
    });
    s.once('secureConnect', () => {
      resolve({ ok: true, protocol: s.getProtocol() ?? '', cipher: s.getCipher().name });
      s.destroy();
    });
    s.once('error', (e: Error & { code?: string }) => resolve({ ok: false, code: e.code ?? e.message }));
  });
}

function pskClient(port: number, pid: string, pps: string, password = MEBX, username = 'admin'): DigestClient {
  return new DigestClient({
    connect: () =>
      tls.connect({
        host: '127.0.0.1',
        port,
        ciphers: PSK_CIPHERS.join(':'),
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.2',
        checkServerIdentity: () => undefined,
        pskCallback: () => ({ identity: pid, psk: Buffer.from(pps, 'ascii') }),
      }),
    username,
    password,
  });
}

function plainClient(port: number, password = MEBX, format?: (p: DigestParams) => string): DigestClient {
  return new DigestClient({
    connect: () => net.connect({ host: '127.0.0.1', port }),
    username: 'admin',
    password,
    ...(format === undefined ? {} : { format }),
  });
}

/** Writes raw bytes to 16992 and reads until the server closes. */
function rawExchange(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.end(data));
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.on('error', reject);
  });
}

function openssl(args: string[], input: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ stdout, stderr });
    });
    child.stdin.end(input);
  });
}

describe('TLS-PSK on the TLS port', () => {
  it('completes the handshake with identity = PID and key = the 32 PPS bytes at TLS 1.0 and 1.2', async () => {
    const { ports, pid, pps } = await startDevice();
    const v10 = await handshake(ports.tlsPort, pid, pps, { min: 'TLSv1', max: 'TLSv1' });
    assert.deepEqual(v10, { ok: true, protocol: 'TLSv1', cipher: 'PSK-AES128-CBC-SHA' });
    const v12 = await handshake(ports.tlsPort, pid, pps, { min: 'TLSv1.2', max: 'TLSv1.2' });
    assert.equal(v12.ok && v12.protocol, 'TLSv1.2');
  });

  it('negotiates each of the five PSK suites', async () => {
    const { ports, pid, pps } = await startDevice();
    for (const suite of PSK_CIPHERS) {
      const r = await handshake(ports.tlsPort, pid, pps, { min: 'TLSv1.2', max: 'TLSv1.2', ciphers: suite });
      assert.deepEqual(r, { ok: true, protocol: 'TLSv1.2', cipher: suite });
    }
  });

  it('fails an unknown identity with alert unknown_psk_identity (115) and reports it', async () => {
    const { device, ports, pps } = await startDevice();
    const seen: Array<{ code: string; identity: string | null }> = [];
    device.on('handshakeFailed', (e) => seen.push(e));
    const r = await handshake(ports.tlsPort, 'ABCDEFGH', pps);
    assert.deepEqual(r, { ok: false, code: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_PSK_IDENTITY' });
    await new Promise((res) => setImmediate(res));
    assert.deepEqual(seen, [{ uuid: device.uuid, code: 'ERR_SSL_PSK_IDENTITY_NOT_FOUND', identity: 'ABCDEFGH' }]);
    assert.match(device.snapshot().lastError ?? '', /PSK_IDENTITY_NOT_FOUND/);
  });

  it('fails a wrong key with bad_record_mac (alert 20), at TLS 1.0 and 1.2', async () => {
    const { ports, pid } = await startDevice();
    const wrong = generatePps();
    for (const v of ['TLSv1', 'TLSv1.2'] as const) {
      const r = await handshake(ports.tlsPort, pid, wrong, { min: v, max: v });
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.code, /BAD_RECORD_MAC|DECRYPT_ERROR/);
    }
  });

  it('caps at TLS 1.2: a TLS 1.3-only client finds no common version', async () => {
    const { ports, pid, pps } = await startDevice();
    const r = await handshake(ports.tlsPort, pid, pps, { min: 'TLSv1.3', max: 'TLSv1.3' });
    assert.equal(r.ok, false);
  });

  it('honours a narrower version range set for the device', async () => {
    const { ports, pid, pps } = await startDevice({ tls: { minVersion: 'TLSv1.2' } });
    assert.equal((await handshake(ports.tlsPort, pid, pps, { min: 'TLSv1', max: 'TLSv1' })).ok, false);
    assert.equal((await handshake(ports.tlsPort, pid, pps, { min: 'TLSv1.2', max: 'TLSv1.2' })).ok, true);
  });

  it('refuses TLS 1.3 as a device setting', () => {
    assert.throws(
      () => new SimDevice({ uuid: '8f2a0c4e-51b3-4d9e-a6f7-0123456789ab' }, { tls: { maxVersion: 'TLSv1.3' } }),
      (e) => isScsError(e, 'SCS_SIM_CONFIG_INVALID'),
    );
  });

  it('speaks TLS 1.0 PSK to openssl s_client and answers WS-Man through it', async () => {
    const { ports, pid, pps } = await startDevice();
    const hex = Buffer.from(pps, 'ascii').toString('hex');
    const request = `POST /wsman HTTP/1.1\r\nHost: device\r\nContent-Type: application/soap+xml\r\nContent-Length: ${IDENTIFY.length}\r\nConnection: close\r\n\r\n${IDENTIFY}`;
    const ok = await openssl(
      [
        's_client',
        '-connect',
        `127.0.0.1:${ports.tlsPort}`,
        '-tls1',
        '-psk',
        hex,
        '-psk_identity',
        pid,
        '-cipher',
        'PSK-AES128-CBC-SHA',
        '-ign_eof',
      ],
      request,
    );
    assert.match(ok.stdout, /Protocol\s*:\s*TLSv1\b/);
    assert.match(ok.stdout, /Cipher\s*:\s*PSK-AES128-CBC-SHA/);
    assert.match(ok.stdout, /HTTP\/1\.1 200 OK/);
    assert.match(ok.stdout, /IdentifyResponse/);
    const bad = await openssl(
      ['s_client', '-connect', `127.0.0.1:${ports.tlsPort}`, '-tls1_2', '-psk', hex, '-psk_identity', 'ZZZZZZZZ'],
      '',
    );
    assert.match(bad.stdout + bad.stderr, /alert unknown psk identity|alert number 115/);
  });

  it('listens on the address it is given and reports SCS_LISTEN_FAILED for a taken port', async () => {
    const { device, ports, pid, pps } = await startDevice({}, '127.3.4.5');
    assert.equal(device.snapshot().address, '127.3.4.5');
    assert.equal((await handshake(ports.tlsPort, pid, pps, { host: '127.3.4.5' })).ok, true);
    const other = new SimDevice({ uuid: '8f2a0c4e-51b3-4d9e-a6f7-0123456789ac' });
    await assert.rejects(other.start({ host: '127.3.4.5', tlsPort: ports.tlsPort, httpPort: 0 }), (e) =>
      isScsError(e, 'SCS_LISTEN_FAILED'),
    );
    assert.equal(other.ports, undefined);
  });
});

describe('HTTP and Digest', () => {
  it("challenges with AMT's exact WWW-Authenticate, 401 and Connection: close", async () => {
    const { device, ports } = await startDevice();
    const c = plainClient(ports.httpPort);
    const r = await c.raw(new AMT.Messages().GeneralSettings.Get());
    c.close();
    assert.equal(r.status, 401);
    assert.match(
      r.headers['www-authenticate'] ?? '',
      new RegExp(`^Digest realm="${device.digestRealm}", nonce="[A-Za-z0-9+/]+",stale="false",qop="auth"$`),
    );
    assert.equal(r.headers.connection, 'close');
    assert.equal(r.headers['content-type'], 'text/html');
  });

  it('retries on a new connection after the 401, then reuses the nonce with a rising nc on one kept-alive socket', async () => {
    const { ports, pid, pps } = await startDevice();
    const c = pskClient(ports.tlsPort, pid, pps);
    const amt = new AMT.Messages();
    for (let i = 0; i < 4; i++) {
      const r = await c.post(amt.GeneralSettings.Get());
      assert.equal(r.status, 200);
      assert.equal(r.headers['transfer-encoding'], 'chunked');
      assert.equal(r.headers['content-type'], 'application/soap+xml; charset=UTF-8');
      assert.equal(r.headers.server, 'Intel(R) Active Management Technology 6.2.0');
    }
    c.close();
    // One connection for the 401 (closed by the device), one kept alive for the four calls.
    assert.equal(c.connections, 2);
  });

  it('refuses a replayed nonce count', async () => {
    const { ports } = await startDevice();
    const c = plainClient(ports.httpPort);
    const body = new AMT.Messages().GeneralSettings.Get();
    assert.equal((await c.post(body)).status, 200);
    const auth = c.authorization() ?? '';
    assert.equal((await c.raw(body, { Authorization: auth })).status, 200);
    const replay = await c.raw(body, { Authorization: auth });
    c.close();
    assert.equal(replay.status, 401);
    assert.match(replay.headers['www-authenticate'] ?? '', /stale="false"/);
  });

  it('answers stale="true" to right credentials on an expired nonce, and the client recovers', async () => {
    let now = 1_700_000_000_000;
    const { ports } = await startDevice({ clock: () => now, nonceTtlMs: 1000 });
    const c = plainClient(ports.httpPort);
    const body = new AMT.Messages().GeneralSettings.Get();
    assert.equal((await c.post(body)).status, 200);
    now += 5000;
    const stale = await c.raw(body, { Authorization: c.authorization() ?? '' });
    assert.equal(stale.status, 401);
    assert.match(stale.headers['www-authenticate'] ?? '', /stale="true"/);
    assert.equal((await c.post(body)).status, 200);
    c.close();
  });

  it('answers a wrong password with 401', async () => {
    const { ports } = await startDevice();
    const c = plainClient(ports.httpPort, 'Wr0ng!pass');
    const r = await c.post(new AMT.Messages().GeneralSettings.Get());
    c.close();
    assert.equal(r.status, 401);
  });

  it('accepts the Authorization layouts real clients send', async () => {
    const { ports } = await startDevice();
    const layouts: Array<(p: DigestParams) => string> = [
      formatAuthorization,
      (p) =>
        `Digest response="${p.response}",cnonce="${p.cnonce}",nc="${p.nc}",qop="${p.qop}",uri="${p.uri}",nonce="${p.nonce}",realm="${p.realm}",username="${p.username}",algorithm="MD5"`,
      (p) =>
        `Digest username = "${p.username}" , realm="${p.realm}",nonce="${p.nonce}",uri="${p.uri}",algorithm=MD5,response="${p.response}",qop=auth,nc=${p.nc},cnonce="${p.cnonce}"`,
    ];
    for (const format of layouts) {
      const c = plainClient(ports.httpPort, MEBX, format);
      const r = await c.post(new AMT.Messages().GeneralSettings.Get());
      c.close();
      assert.equal(r.status, 200, format({ nc: 'x' } as DigestParams).slice(0, 40));
    }
  });

  it('answers Identify without credentials but nothing else', async () => {
    const { ports } = await startDevice();
    const c = plainClient(ports.httpPort);
    const id = await c.raw(IDENTIFY);
    assert.equal(id.status, 200);
    assert.match(id.body, /IdentifyResponse/);
    assert.equal((await c.raw('<not xml')).status, 401);
    c.close();
  });

  it('answers 413 to a body over the bound, declared or chunked', async () => {
    const { ports } = await startDevice({ maxBodyBytes: 4096 });
    const big = 'x'.repeat(5000);
    const declared = await rawExchange(
      ports.httpPort,
      `POST /wsman HTTP/1.1\r\nHost: d\r\nContent-Length: ${big.length}\r\n\r\n${big}`,
    );
    assert.match(declared, /^HTTP\/1\.1 413 /);
    const chunk = 'y'.repeat(1000);
    const chunked = await rawExchange(
      ports.httpPort,
      `POST /wsman HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n${`3e8\r\n${chunk}\r\n`.repeat(5)}0\r\n\r\n`,
    );
    assert.match(chunked, /^HTTP\/1\.1 413 /);
  });

  it('answers an authenticated DOCTYPE with a SchemaValidationError fault and keeps serving', async () => {
    const { ports } = await startDevice();
    const c = plainClient(ports.httpPort);
    const r = await c.post('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>');
    assert.equal(r.status, 400);
    assert.match(r.body, /SchemaValidationError/);
    assert.equal((await c.post(new AMT.Messages().GeneralSettings.Get())).status, 200);
    c.close();
  });

  it('answers an internal failure with a Receiver fault and HTTP 500, and reports it as an error event', async () => {
    const { device, ports } = await startDevice({ keyPairProvider: () => Promise.reject(new Error('key pool empty')) });
    const errors: string[] = [];
    device.on('error', (e) => errors.push(e.message));
    const c = plainClient(ports.httpPort);
    const r = await c.post(
      new AMT.Messages().PublicKeyManagementService.GenerateKeyPair({ KeyAlgorithm: 0, KeyLength: 2048 }),
    );
    c.close();
    assert.equal(r.status, 500);
    assert.match(r.body, /a:Receiver/);
    assert.match(r.body, /InternalError/);
    assert.deepEqual(errors, ['key pool empty']);
    assert.match(device.snapshot().lastError ?? '', /key pool empty/);
  });

  it('writes replies in chunked encoding on the wire and serves /wsman only', async () => {
    const { ports } = await startDevice();
    const raw = await rawExchange(
      ports.httpPort,
      `POST /wsman HTTP/1.1\r\nHost: d\r\nConnection: close\r\nContent-Length: ${IDENTIFY.length}\r\n\r\n${IDENTIFY}`,
    );
    assert.match(raw, /\r\nTransfer-Encoding: chunked\r\n/i);
    assert.match(raw, /\r\n\r\n[0-9a-f]+\r\n<\?xml/);
    assert.match(raw, /\r\n0\r\n\r\n$/);
    const other = await rawExchange(ports.httpPort, 'GET /index.htm HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n');
    assert.match(other, /^HTTP\/1\.1 404 /);
  });
});
