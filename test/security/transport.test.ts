import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls, { type SecureVersion } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { SimDevice } from '../../simulator/device/device.ts';
import { pooledKeyPairs } from '../../simulator/wsman/test-harness.ts';
import { connectPsk } from '../../src/amt/tls-psk.ts';
import { loadConfig } from '../../src/config.ts';
import { isScsError } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import { startServer, type Server } from '../../src/main.ts';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import { Secret } from '../../src/secret.ts';

/**
 * Transport (docs/security.md, "Transport"): TLS 1.0 is for legacy devices only. The device side
 * offers it by default (AMT 2.x-10.x need it) and `--tls-min-version` / SCS_TLS_MIN_VERSION turns
 * it off; the REST API over HTTPS never speaks below TLS 1.2, whatever the device setting.
 */

/** A client that can speak only `version` (security level 0, so OpenSSL does not refuse 1.0/1.1 itself). */
function handshake(
  port: number,
  version: SecureVersion,
  ca: Buffer,
): Promise<{ ok: true; protocol: string } | { ok: false; code: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      ca,
      minVersion: version,
      maxVersion: version,
      ciphers: 'DEFAULT:@SECLEVEL=0',
      checkServerIdentity: () => undefined,
    });
    s.once('secureConnect', () => {
      resolve({ ok: true, protocol: s.getProtocol() ?? '' });
      s.destroy();
    });
    s.once('error', (e: Error & { code?: string }) => resolve({ ok: false, code: e.code ?? e.message }));
  });
}

function curl(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['--silent', '--show-error', '--max-time', '30', ...args], (error, stdout) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout });
    });
  });
}

describe('the REST API over HTTPS, next to device-side TLS 1.0', () => {
  let dir: string;
  let server: Server;
  let cert: Buffer;
  let apiPort: number;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'scs-transport-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
        '-subj',
        '/CN=localhost',
        '-days',
        '1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    cert = readFileSync(path.join(dir, 'cert.pem'));
    // The default device setting (TLS 1.0 allowed towards devices) is the one that must not reach the API.
    const config = loadConfig({
      flags: {
        dataDir: dir,
        helloHost: '127.0.0.1',
        helloPort: 0,
        apiHost: '127.0.0.1',
        apiPort: 0,
        apiTlsCert: path.join(dir, 'cert.pem'),
        apiTlsKey: path.join(dir, 'key.pem'),
      },
      env: {},
    });
    assert.equal(config.tlsMinVersion, 'TLSv1');
    server = await startServer(config, { log: createLogger('silent'), api: true });
    apiPort = new URL(server.api?.url ?? 'http://x:0').port === '' ? 0 : Number(new URL(server.api?.url ?? '').port);
  });
  after(async () => {
    await server.stop({ graceMs: 0 });
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers curl over HTTPS with the configured certificate', async () => {
    assert.match(server.api?.url ?? '', /^https:/);
    const { code, stdout } = await curl([
      '--cacert',
      path.join(dir, 'cert.pem'),
      `https://127.0.0.1:${apiPort}/healthz`,
    ]);
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(stdout), { status: 'ok', db: 'ok' });
  });

  it('refuses TLS 1.0 and 1.1 and accepts 1.2 and 1.3', async () => {
    for (const v of ['TLSv1', 'TLSv1.1'] as const) {
      const r = await handshake(apiPort, v, cert);
      assert.equal(r.ok, false, `${v}: ${JSON.stringify(r)}`);
    }
    for (const v of ['TLSv1.2', 'TLSv1.3'] as const) {
      const r = await handshake(apiPort, v, cert);
      assert.deepEqual(r, { ok: true, protocol: v });
    }
    const old = await curl([
      '--cacert',
      path.join(dir, 'cert.pem'),
      '--tlsv1.0',
      '--tls-max',
      '1.1',
      `https://127.0.0.1:${apiPort}/healthz`,
    ]);
    assert.notEqual(old.code, 0, 'curl limited to TLS 1.0-1.1 must not get an answer');
  });

  it('the same TLS 1.0 client does connect to a server that allows 1.0 (so the refusal above is the API, not the client)', async () => {
    const legacy = tls.createServer({
      cert,
      key: readFileSync(path.join(dir, 'key.pem')),
      minVersion: 'TLSv1',
      ciphers: 'DEFAULT:@SECLEVEL=0',
    });
    legacy.on('secureConnection', (s) => s.end());
    await new Promise<void>((resolve) => legacy.listen(0, '127.0.0.1', resolve));
    try {
      const r = await handshake((legacy.address() as AddressInfo).port, 'TLSv1', cert);
      assert.deepEqual(r, { ok: true, protocol: 'TLSv1' });
    } finally {
      await new Promise<void>((resolve) => legacy.close(() => resolve()));
    }
  });
});

describe('device-side TLS 1.0 is a setting', () => {
  const pid = generatePid();
  const pps = generatePps();
  let device: SimDevice;
  let port: number;

  before(async () => {
    // An AMT 2.x-10.x device: TLS 1.0 only.
    device = new SimDevice(
      { uuid: '8f2a0c4e-51b3-4d9e-a6f7-0123456789ab', pid, pps, mebxPassword: 'P@ssw0rd' },
      { keyPairProvider: pooledKeyPairs(1), tls: { minVersion: 'TLSv1', maxVersion: 'TLSv1' } },
    );
    port = (await device.start({ host: '127.0.0.1', tlsPort: 0, httpPort: 0 })).tlsPort;
  });
  after(async () => {
    await device.stop();
  });

  const connectWith = (env: Record<string, string>) => {
    const config = loadConfig({ flags: { dataDir: tmpdir() }, env });
    return connectPsk({
      host: '127.0.0.1',
      port,
      pid,
      pps: new Secret(pps),
      minVersion: config.tlsMinVersion,
      maxVersion: config.tlsMaxVersion,
      timeoutMs: 20_000,
    });
  };

  it('reaches a TLS 1.0-only device with the default settings', async () => {
    const socket = await connectWith({});
    try {
      assert.equal(socket.getProtocol(), 'TLSv1');
    } finally {
      socket.destroy();
    }
  });

  it('refuses it once SCS_TLS_MIN_VERSION=TLSv1.2 turns TLS 1.0 off', async () => {
    await assert.rejects(connectWith({ SCS_TLS_MIN_VERSION: 'TLSv1.2' }), (e: unknown) =>
      isScsError(e, 'SCS_TLS_NO_COMMON_SUITE'),
    );
  });
});
