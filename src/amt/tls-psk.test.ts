import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { TlsVersion } from '../config.ts';
import { isScsError, type ErrorCode } from '../errors.ts';
import { generatePid, generatePps } from '../psk/generate.ts';
import { Secret } from '../secret.ts';
import { connectPsk, connectTls } from './tls-psk.ts';

const pid = generatePid();
const pps = generatePps();
const key = Buffer.from(pps, 'ascii');
const otherPps = generatePps();

type Server = { port: number; close(): Promise<void> };

function listen(server: net.Server): Promise<Server> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((r) => server.close(() => r())),
      }),
    );
  });
}

/** A device stand-in: Node's own TLS-PSK server that knows only `pid`. */
function nodePskServer(opts: {
  minVersion: TlsVersion | 'TLSv1.3';
  maxVersion: TlsVersion | 'TLSv1.3';
  ciphers?: string;
}) {
  const server = tls.createServer(
    {
      minVersion: opts.minVersion,
      maxVersion: opts.maxVersion,
      ciphers: opts.ciphers ?? 'PSK-AES128-CBC-SHA:PSK-AES256-CBC-SHA:PSK-AES128-GCM-SHA256',
      pskCallback: (_socket, identity) => (identity === pid ? key : null),
    },
    (socket) => socket.end(),
  );
  server.on('tlsClientError', () => undefined);
  return listen(server);
}

/** `openssl s_server -psk <hex> -nocert` on a free port; resolves once it prints ACCEPT. */
function opensslPskServer(versionFlag: string): Promise<{ port: number; process: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'openssl',
      ['s_server', '-accept', '127.0.0.1:0', '-psk', key.toString('hex'), '-psk_identity', pid, '-nocert', versionFlag],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ACCEPT [^\s]*:(\d+)/.exec(out);
      if (m) resolve({ port: Number(m[1]), process: child });
    });
    child.stderr.on('data', () => undefined);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`openssl s_server exited with ${code}: ${out}`)));
  });
}

async function failure(
  promise: Promise<unknown>,
): Promise<{ code: ErrorCode; error: Error & { details: Record<string, unknown> } }> {
  try {
    const s = await promise;
    (s as tls.TLSSocket).destroy();
  } catch (e) {
    assert.ok(isScsError(e), `expected an ScsError, got ${String(e)}`);
    return { code: e.code, error: e };
  }
  assert.fail('expected the connection to fail');
}

const base = (port: number) => ({ host: '127.0.0.1', port, pid, pps: new Secret(pps), timeoutMs: 5_000 });

describe('connectPsk against Node tls.createServer({ pskCallback })', () => {
  for (const version of ['TLSv1', 'TLSv1.2'] as const) {
    it(`completes the handshake at ${version} with the right PID and PPS`, async () => {
      const server = await nodePskServer({ minVersion: version, maxVersion: version });
      try {
        const socket = await connectPsk(base(server.port));
        assert.equal(socket.getProtocol(), version);
        // The client offers PSK-AES128-CBC-SHA first (§3) and the server follows the client's order.
        assert.equal(socket.getCipher().name, 'PSK-AES128-CBC-SHA');
        socket.destroy();
      } finally {
        await server.close();
      }
    });
  }

  it('reports a wrong PPS as SCS_TLS_BAD_KEY (alert 20) and never prints the PPS', async () => {
    const server = await nodePskServer({ minVersion: 'TLSv1', maxVersion: 'TLSv1.2' });
    try {
      const { code, error } = await failure(connectPsk({ ...base(server.port), pps: new Secret(otherPps) }));
      assert.equal(code, 'SCS_TLS_BAD_KEY');
      assert.equal(error.details.alert, 20);
      assert.equal(error.details.opensslCode, 'ERR_SSL_SSLV3_ALERT_BAD_RECORD_MAC');
      const everything = [error.message, JSON.stringify(error.details), inspect(error, { depth: 5 })].join('\n');
      assert.ok(!everything.includes(otherPps) && !everything.includes(pps), 'a PPS leaked into the error');
    } finally {
      await server.close();
    }
  });

  it('reports an unknown PID as SCS_TLS_UNKNOWN_IDENTITY (alert 115)', async () => {
    const server = await nodePskServer({ minVersion: 'TLSv1', maxVersion: 'TLSv1.2' });
    try {
      const { code, error } = await failure(connectPsk({ ...base(server.port), pid: generatePid() }));
      assert.equal(code, 'SCS_TLS_UNKNOWN_IDENTITY');
      assert.equal(error.details.alert, 115);
    } finally {
      await server.close();
    }
  });

  it('reports a TLS 1.3-only device as SCS_TLS_NO_COMMON_SUITE', async () => {
    const server = await nodePskServer({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
    try {
      const { code, error } = await failure(connectPsk(base(server.port)));
      assert.equal(code, 'SCS_TLS_NO_COMMON_SUITE');
      assert.equal(error.details.alert, 70);
    } finally {
      await server.close();
    }
  });

  it('reports a device with no suite in common as SCS_TLS_NO_COMMON_SUITE', async () => {
    const server = await nodePskServer({
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
      ciphers: 'PSK-AES256-GCM-SHA384',
    });
    try {
      const { code, error } = await failure(connectPsk({ ...base(server.port), ciphers: 'PSK-AES128-CBC-SHA' }));
      assert.equal(code, 'SCS_TLS_NO_COMMON_SUITE');
      assert.equal(error.details.alert, 40);
    } finally {
      await server.close();
    }
  });

  it('reports a device that only speaks TLS 1.0 to a client set to 1.2 as SCS_TLS_NO_COMMON_SUITE', async () => {
    const server = await nodePskServer({ minVersion: 'TLSv1', maxVersion: 'TLSv1' });
    try {
      const { code } = await failure(connectPsk({ ...base(server.port), minVersion: 'TLSv1.2' }));
      assert.equal(code, 'SCS_TLS_NO_COMMON_SUITE');
    } finally {
      await server.close();
    }
  });

  it('reports a closed port as SCS_TLS_REFUSED', async () => {
    const server = await listen(net.createServer());
    await server.close();
    const { code } = await failure(connectPsk(base(server.port)));
    assert.equal(code, 'SCS_TLS_REFUSED');
  });

  it('reports a device that accepts TCP and never answers as SCS_TLS_TIMEOUT', async () => {
    const held = new Set<net.Socket>();
    const server = await listen(net.createServer((s) => held.add(s)));
    try {
      const { code, error } = await failure(connectPsk({ ...base(server.port), timeoutMs: 200 }));
      assert.equal(code, 'SCS_TLS_TIMEOUT');
      assert.equal(error.details.timeoutMs, 200);
    } finally {
      for (const s of held) s.destroy();
      await server.close();
    }
  });

  it('reports a peer that closes during the handshake as SCS_TLS_FAILED', async () => {
    const server = await listen(net.createServer((s) => s.destroy()));
    try {
      const { code } = await failure(connectPsk(base(server.port)));
      assert.equal(code, 'SCS_TLS_FAILED');
    } finally {
      await server.close();
    }
  });

  it('stops at once when its AbortSignal fires, with the signal reason', async () => {
    const held = new Set<net.Socket>();
    const server = await listen(net.createServer((s) => held.add(s)));
    try {
      const controller = new AbortController();
      const pending = connectPsk({ ...base(server.port), timeoutMs: 60_000, signal: controller.signal });
      controller.abort(new Error('shutting down'));
      await assert.rejects(pending, /shutting down/);
      await assert.rejects(connectPsk({ ...base(server.port), signal: controller.signal }), /shutting down/);
    } finally {
      for (const s of held) s.destroy();
      await server.close();
    }
  });
});

describe('connectPsk against openssl s_server -psk -nocert', () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) c.kill();
  });

  for (const [flag, version] of [
    ['-tls1', 'TLSv1'],
    ['-tls1_2', 'TLSv1.2'],
  ] as const) {
    it(`connects at ${version} with the right key and fails with SCS_TLS_BAD_KEY on a wrong one`, async () => {
      const server = await opensslPskServer(flag);
      children.push(server.process);
      const socket = await connectPsk(base(server.port));
      assert.equal(socket.getProtocol(), version);
      socket.destroy();
      const { code } = await failure(connectPsk({ ...base(server.port), pps: new Secret(otherPps) }));
      assert.equal(code, 'SCS_TLS_BAD_KEY');
    });
  }

  it('reports a TLS 1.3-only s_server as SCS_TLS_NO_COMMON_SUITE', async () => {
    const server = await opensslPskServer('-tls1_3');
    children.push(server.process);
    const { code } = await failure(connectPsk(base(server.port)));
    assert.equal(code, 'SCS_TLS_NO_COMMON_SUITE');
  });
});

/** gnutls-serv with a PSK file (`identity:hexkey`) on a free port; resolves once it listens. */
async function gnutlsPskServer(dir: string): Promise<{ port: number; process: ChildProcess }> {
  const free = await listen(net.createServer());
  await free.close();
  const file = path.join(dir, 'psk.txt');
  await writeFile(file, `${pid}:${key.toString('hex')}\n`);
  const child = spawn(
    'gnutls-serv',
    ['-p', String(free.port), '--pskpasswd', file, '--priority', 'NORMAL:-KX-ALL:+PSK:+VERS-TLS1.0:-VERS-TLS1.3'],
    { stdio: 'ignore' },
  );
  // gnutls-serv block-buffers its banner when piped, so wait until the port takes connections.
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const probe = net.connect(free.port, '127.0.0.1', () => {
        probe.destroy();
        resolve(true);
      });
      probe.on('error', () => resolve(false));
    });
    if (up) return { port: free.port, process: child };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill();
  throw new Error('gnutls-serv did not start');
}

describe('connectPsk against gnutls-serv --pskpasswd (a second TLS stack)', () => {
  let dir = '';
  let server: { port: number; process: ChildProcess } | undefined;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gnutls-psk-'));
    server = await gnutlsPskServer(dir);
  });
  after(async () => {
    server?.process.kill();
    await rm(dir, { recursive: true, force: true });
  });

  for (const version of ['TLSv1', 'TLSv1.2'] as const) {
    it(`connects at ${version} with the right key`, async () => {
      const socket = await connectPsk({ ...base(server?.port ?? 0), minVersion: version, maxVersion: version });
      assert.equal(socket.getProtocol(), version);
      socket.destroy();
    });
  }

  it('shows an unknown PID as SCS_TLS_BAD_KEY: gnutls hides unknown identities (RFC 4279 §2)', async () => {
    const { code: wrongKey } = await failure(connectPsk({ ...base(server?.port ?? 0), pps: new Secret(otherPps) }));
    assert.equal(wrongKey, 'SCS_TLS_BAD_KEY');
    const { code: unknown } = await failure(connectPsk({ ...base(server?.port ?? 0), pid: generatePid() }));
    assert.equal(unknown, 'SCS_TLS_BAD_KEY');
  });
});

describe('connectTls (certificate, after provisioning)', () => {
  let dir = '';
  let ca = '';
  let otherCa = '';
  let cert = '';
  let deviceKey = '';

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tls-cert-'));
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    // RSA, as AMT uses (GenerateKeyPair KeyAlgorithm 0), so TLS 1.0 can be tested too.
    const ec = ['-newkey', 'rsa:2048', '-nodes'];
    for (const name of ['ca', 'other']) {
      ssl('req', '-x509', ...ec, '-keyout', `${name}.key`, '-subj', `/CN=${name}`, '-days', '2', '-out', `${name}.pem`);
    }
    ssl('req', ...ec, '-keyout', 'dev.key', '-subj', '/CN=amt1.example.test', '-out', 'dev.csr');
    await writeFile(path.join(dir, 'dev.ext'), 'subjectAltName=DNS:amt1.example.test\n');
    ssl(
      'x509',
      '-req',
      '-in',
      'dev.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-days',
      '2',
      '-extfile',
      'dev.ext',
      '-out',
      'dev.pem',
    );
    ca = await readFile(path.join(dir, 'ca.pem'), 'utf8');
    otherCa = await readFile(path.join(dir, 'other.pem'), 'utf8');
    cert = await readFile(path.join(dir, 'dev.pem'), 'utf8');
    deviceKey = await readFile(path.join(dir, 'dev.key'), 'utf8');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const certServer = (version: TlsVersion = 'TLSv1.2') => {
    // A TLS 1.0 server must itself drop to security level 0 to sign with MD5+SHA-1.
    const server = tls.createServer(
      { cert, key: deviceKey, minVersion: version, maxVersion: version, ciphers: 'DEFAULT:@SECLEVEL=0' },
      (s) => s.end(),
    );
    server.on('tlsClientError', () => undefined);
    return listen(server);
  };

  it('connects when the device certificate chains to the SCS CA and names the device', async () => {
    const server = await certServer();
    try {
      const socket = await connectTls({
        host: '127.0.0.1',
        port: server.port,
        ca,
        servername: 'amt1.example.test',
        timeoutMs: 5_000,
      });
      assert.equal(socket.authorized, true);
      socket.destroy();
    } finally {
      await server.close();
    }
  });

  it('connects to a TLS 1.0-only device (AMT 6-10) by allowing its legacy signatures', async () => {
    const server = await certServer('TLSv1');
    try {
      const socket = await connectTls({
        host: '127.0.0.1',
        port: server.port,
        ca,
        servername: 'amt1.example.test',
        timeoutMs: 5_000,
      });
      assert.equal(socket.getProtocol(), 'TLSv1');
      socket.destroy();
      // Held to TLS 1.2 only, the client refuses it: no version in common.
      const { code } = await failure(
        connectTls({
          host: '127.0.0.1',
          port: server.port,
          ca,
          servername: 'amt1.example.test',
          minVersion: 'TLSv1.2',
          timeoutMs: 5_000,
        }),
      );
      assert.equal(code, 'SCS_TLS_NO_COMMON_SUITE');
    } finally {
      await server.close();
    }
  });

  it('rejects a certificate from another CA as SCS_TLS_CERT_REJECTED', async () => {
    const server = await certServer();
    try {
      const { code, error } = await failure(
        connectTls({
          host: '127.0.0.1',
          port: server.port,
          ca: otherCa,
          servername: 'amt1.example.test',
          timeoutMs: 5_000,
        }),
      );
      assert.equal(code, 'SCS_TLS_CERT_REJECTED');
      assert.equal(error.details.opensslCode, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    } finally {
      await server.close();
    }
  });

  it('rejects a certificate for another name as SCS_TLS_CERT_REJECTED', async () => {
    const server = await certServer();
    try {
      const { code } = await failure(
        connectTls({ host: '127.0.0.1', port: server.port, ca, servername: 'amt2.example.test', timeoutMs: 5_000 }),
      );
      assert.equal(code, 'SCS_TLS_CERT_REJECTED');
    } finally {
      await server.close();
    }
  });
});
