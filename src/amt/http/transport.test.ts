import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { isScsError } from '../../errors.ts';
import { generatePid, generatePps } from '../../psk/generate.ts';
import { Secret } from '../../secret.ts';
import { connectPsk } from '../tls-psk.ts';
import { createDigestClient } from './digest-client.ts';
import { createSocketTransport, type HttpTransport } from './transport.ts';

const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex');
const SOAP = 'application/soap+xml;charset=UTF-8';
const REALM = 'Digest:0123456789ABCDEF0123456789ABCDEF';

/**
 * A Digest-checking server written from RFC 2617 §3.2.2 independently of digest.ts: nonces
 * are random base64 without padding (as §4 says AMT's are), nc must rise per nonce, a nonce
 * can be expired (stale=true), and a 401 can close the connection.
 */
interface Behaviour {
  password: string;
  closeOn401: boolean;
  /** Next request with a valid digest is answered 401 stale=true once. */
  expireNonces: boolean;
  /** Handler for authorized requests. */
  reply: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;
}

interface DigestServer {
  port: number;
  behaviour: Behaviour;
  log: { auth: Record<string, string> | undefined; status: number; socket: number }[];
  inFlightMax: number;
  close(): Promise<void>;
}

function parseAuth(header: string | undefined): Record<string, string> | undefined {
  if (!header?.startsWith('Digest ')) return undefined;
  const out: Record<string, string> = {};
  for (const m of header.slice(7).matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    out[(m[1] as string).toLowerCase()] = (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1');
  }
  return out;
}

function startDigestServer(opts: { psk?: { pid: string; pps: string } } = {}): Promise<DigestServer> {
  const nonces = new Map<string, number>();
  const sockets = new WeakMap<object, number>();
  let socketCount = 0;
  let inFlight = 0;
  const state: DigestServer = {
    port: 0,
    log: [],
    inFlightMax: 0,
    behaviour: {
      password: 'P@ssw0rd',
      closeOn401: false,
      expireNonces: false,
      reply: (_req, body, res) => {
        res.setHeader('Content-Type', SOAP);
        res.write(body.subarray(0, 1)); // no Content-Length: Node sends chunked, as AMT does
        res.end(body.subarray(1));
      },
    },
    close: () => Promise.resolve(),
  };
  const challenge = (res: ServerResponse, stale: boolean) => {
    const nonce = randomBytes(16).toString('base64').replace(/=+$/, '');
    nonces.set(nonce, 0);
    res.statusCode = 401;
    res.setHeader('WWW-Authenticate', `Digest realm="${REALM}", nonce="${nonce}",stale="${stale}",qop="auth"`);
    if (state.behaviour.closeOn401) res.setHeader('Connection', 'close');
    res.end();
  };
  const server = http.createServer((req, res) => {
    inFlight++;
    state.inFlightMax = Math.max(state.inFlightMax, inFlight);
    res.on('finish', () => inFlight--);
    res.on('close', () => (inFlight = Math.max(0, inFlight - (res.writableFinished ? 0 : 1))));
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      const auth = parseAuth(req.headers.authorization);
      const entry = { auth, status: 401, socket: sockets.get(req.socket) ?? -1 };
      state.log.push(entry);
      if (!auth) return challenge(res, false);
      const seen = nonces.get(auth.nonce ?? '');
      if (seen === undefined) return challenge(res, true);
      if (state.behaviour.expireNonces) {
        state.behaviour.expireNonces = false;
        nonces.delete(auth.nonce ?? '');
        return challenge(res, true);
      }
      const nc = parseInt(auth.nc ?? '', 16);
      if (!/^[0-9a-f]{8}$/.test(auth.nc ?? '') || nc <= seen) return challenge(res, false);
      const ha1 = md5(`${auth.username}:${REALM}:${state.behaviour.password}`);
      const ha2 = md5(`${req.method}:${auth.uri}`);
      const expected = md5(`${ha1}:${auth.nonce}:${auth.nc}:${auth.cnonce}:${auth.qop}:${ha2}`);
      if (auth.response !== expected || auth.username !== 'admin' || auth.uri !== req.url) return challenge(res, false);
      nonces.set(auth.nonce ?? '', nc);
      entry.status = 200;
      state.behaviour.reply(req, body, res);
    });
  });
  server.on('connection', (s) => sockets.set(s, ++socketCount));
  server.keepAliveTimeout = 60_000;
  let listening: net.Server = server;
  if (opts.psk) {
    const { pid, pps } = opts.psk;
    const tlsServer = tls.createServer({
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.2',
      ciphers: 'PSK-AES128-CBC-SHA',
      pskCallback: (_s, identity) => (identity === pid ? Buffer.from(pps, 'ascii') : null),
    });
    tlsServer.on('secureConnection', (s) => server.emit('connection', s));
    listening = tlsServer;
  }
  return new Promise((resolve) => {
    listening.listen(0, '127.0.0.1', () => {
      state.port = (listening.address() as AddressInfo).port;
      state.close = () =>
        new Promise<void>((r) => {
          server.closeAllConnections();
          listening.close(() => r());
        });
      resolve(state);
    });
  });
}

const tcpTransport = (port: number, extra: { timeoutMs?: number; maxBodyBytes?: number } = {}): HttpTransport =>
  createSocketTransport({
    host: `127.0.0.1:${port}`,
    connect: () =>
      new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      }),
    ...extra,
  });

describe('HTTP transport + Digest against a Digest-checking Node server', () => {
  let server: DigestServer;
  before(async () => {
    server = await startDigestServer();
  });
  after(async () => {
    await server.close();
  });

  const client = (transport: HttpTransport, password = 'P@ssw0rd') =>
    createDigestClient({ transport, username: 'admin', password: new Secret(password) });

  it('answers the first 401 and then reuses the nonce with a rising nc on one kept-alive connection', async () => {
    server.log.length = 0;
    const transport = tcpTransport(server.port);
    const c = client(transport);
    for (let i = 0; i < 3; i++) {
      const res = await c.post('/wsman', SOAP, Buffer.from(`<call n="${i}"/>`));
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), `<call n="${i}"/>`);
    }
    assert.equal(c.challenges, 1);
    assert.equal(transport.connections, 1);
    assert.deepEqual(
      server.log.map((e) => [e.status, e.auth?.nc ?? null]),
      [
        [401, null],
        [200, '00000001'],
        [200, '00000002'],
        [200, '00000003'],
      ],
    );
    assert.equal(new Set(server.log.map((e) => e.socket)).size, 1);
    transport.close();
  });

  it('sends Content-Length in bytes for a body with multi-byte characters', async () => {
    const transport = tcpTransport(server.port);
    const body = Buffer.from('<h:HostName>hôte-€</h:HostName>');
    const res = await client(transport).post('/wsman', SOAP, body);
    assert.deepEqual(res.body, body);
    transport.close();
  });

  it('fails with SCS_AMT_AUTH_FAILED after one retry when the password is wrong, without printing it', async () => {
    server.log.length = 0;
    const transport = tcpTransport(server.port);
    await assert.rejects(client(transport, 'wrong-Passw0rd!').post('/wsman', SOAP, Buffer.from('<x/>')), (e) => {
      assert.ok(isScsError(e, 'SCS_AMT_AUTH_FAILED'));
      assert.ok(!e.message.includes('wrong-Passw0rd!') && !JSON.stringify(e.details).includes('wrong-Passw0rd!'));
      assert.equal(e.details.realm, REALM);
      return true;
    });
    assert.equal(server.log.length, 2);
    transport.close();
  });

  it('retries on a new connection after a 401 that closes the connection', async () => {
    server.behaviour.closeOn401 = true;
    try {
      const transport = tcpTransport(server.port);
      const res = await client(transport).post('/wsman', SOAP, Buffer.from('<x/>'));
      assert.equal(res.status, 200);
      assert.equal(transport.connections, 2);
      transport.close();
    } finally {
      server.behaviour.closeOn401 = false;
    }
  });

  it('takes a new nonce when the device says stale=true, without calling it an auth failure', async () => {
    const transport = tcpTransport(server.port);
    const c = client(transport);
    await c.post('/wsman', SOAP, Buffer.from('<a/>'));
    server.behaviour.expireNonces = true;
    const res = await c.post('/wsman', SOAP, Buffer.from('<b/>'));
    assert.equal(res.status, 200);
    assert.equal(c.challenges, 2);
    transport.close();
  });

  it('runs concurrent calls one at a time, in order, on one connection', async () => {
    server.inFlightMax = 0;
    const transport = tcpTransport(server.port);
    const c = client(transport);
    const replies = await Promise.all(
      Array.from({ length: 6 }, (_, i) => c.post('/wsman', SOAP, Buffer.from(`${i}`)).then((r) => r.body.toString())),
    );
    assert.deepEqual(replies, ['0', '1', '2', '3', '4', '5']);
    assert.equal(server.inFlightMax, 1);
    assert.equal(transport.connections, 1);
    transport.close();
  });

  it('agrees with curl --digest, so the server above checks digests as a third party computes them', async () => {
    const { stdout } = await promisify(execFile)('curl', [
      '-s',
      '--digest',
      '-u',
      'admin:P@ssw0rd',
      '-H',
      `Content-Type: ${SOAP}`,
      '--data-binary',
      '<curl/>',
      '-w',
      ' %{http_code}',
      `http://127.0.0.1:${server.port}/wsman`,
    ]);
    assert.equal(stdout, '<curl/> 200');
  });
});

describe('HTTP transport failure modes', () => {
  let server: DigestServer;
  before(async () => {
    server = await startDigestServer();
  });
  after(async () => {
    await server.close();
  });

  it('times out a call the device never answers with SCS_AMT_TIMEOUT, then recovers on a new connection', async () => {
    const transport = tcpTransport(server.port);
    const c = createDigestClient({ transport, username: 'admin', password: new Secret('P@ssw0rd') });
    await c.post('/wsman', SOAP, Buffer.from('<warm/>'));
    const original = server.behaviour.reply;
    server.behaviour.reply = () => undefined; // hold the request forever
    try {
      await assert.rejects(c.post('/wsman', SOAP, Buffer.from('<x/>'), { timeoutMs: 150 }), (e) =>
        isScsError(e, 'SCS_AMT_TIMEOUT'),
      );
    } finally {
      server.behaviour.reply = original;
    }
    const res = await c.post('/wsman', SOAP, Buffer.from('<y/>'));
    assert.equal(res.status, 200);
    assert.equal(transport.connections, 2);
    transport.close();
  });

  it('holds requests to a shared deadline, failing with the caller’s timeout error, and one already past fails at once', async () => {
    const transport = tcpTransport(server.port);
    const c = createDigestClient({ transport, username: 'admin', password: new Secret('P@ssw0rd') });
    await c.post('/wsman', SOAP, Buffer.from('<warm/>'));
    const timeoutError = (): Error => new Error('the whole call ran out of time');
    const original = server.behaviour.reply;
    server.behaviour.reply = () => undefined; // hold the request forever
    try {
      const started = performance.now();
      // timeoutMs alone would wait 10 s: the deadline, 150 ms away, is the earlier bound.
      await assert.rejects(
        c.post('/wsman', SOAP, Buffer.from('<x/>'), { timeoutMs: 10_000, deadline: started + 150, timeoutError }),
        /the whole call ran out of time/,
      );
      assert.ok(performance.now() - started < 5_000);
      const before = server.log.length;
      await assert.rejects(
        c.post('/wsman', SOAP, Buffer.from('<late/>'), { deadline: performance.now() - 1, timeoutError }),
        /the whole call ran out of time/,
      );
      assert.equal(server.log.length, before, 'nothing was sent for a request already out of time');
    } finally {
      server.behaviour.reply = original;
    }
    transport.close();
  });
  it('stops a call when its AbortSignal fires, and a queued call behind it still runs', async () => {
    const transport = tcpTransport(server.port);
    const c = createDigestClient({ transport, username: 'admin', password: new Secret('P@ssw0rd') });
    const original = server.behaviour.reply;
    server.behaviour.reply = (_req, body, res) => setTimeout(() => original(_req, body, res), 300);
    try {
      const controller = new AbortController();
      const first = c.post('/wsman', SOAP, Buffer.from('<slow/>'), { signal: controller.signal });
      const second = c.post('/wsman', SOAP, Buffer.from('<next/>'));
      setTimeout(() => controller.abort(new Error('operator cancelled')), 50);
      await assert.rejects(first, /operator cancelled/);
      assert.equal((await second).body.toString(), '<next/>');
    } finally {
      server.behaviour.reply = original;
    }
    transport.close();
  });

  it('reports a reply cut off mid-body as SCS_AMT_CONNECTION_LOST', async () => {
    const transport = tcpTransport(server.port);
    const c = createDigestClient({ transport, username: 'admin', password: new Secret('P@ssw0rd') });
    const original = server.behaviour.reply;
    server.behaviour.reply = (_req, _body, res) => {
      res.setHeader('Content-Length', '100');
      res.write('only part');
      setTimeout(() => res.socket?.destroy(), 20);
    };
    try {
      await assert.rejects(c.post('/wsman', SOAP, Buffer.from('<x/>')), (e) =>
        isScsError(e, 'SCS_AMT_CONNECTION_LOST'),
      );
    } finally {
      server.behaviour.reply = original;
    }
    transport.close();
  });

  it('refuses a reply over the size bound with SCS_AMT_HTTP', async () => {
    const transport = tcpTransport(server.port, { maxBodyBytes: 1024 });
    const c = createDigestClient({ transport, username: 'admin', password: new Secret('P@ssw0rd') });
    await assert.rejects(c.post('/wsman', SOAP, Buffer.alloc(4096, 0x61)), (e) => isScsError(e, 'SCS_AMT_HTTP'));
    transport.close();
  });
});

describe('HTTP transport byte counters', () => {
  it('counts the HTTP bytes written and read, head and body, over every connection', async () => {
    const reply = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello';
    let arrived = 0;
    const peer = net.createServer((s) => {
      let pending = '';
      s.on('data', (chunk: Buffer) => {
        arrived += chunk.length;
        pending += chunk.toString('latin1');
        // One request per connection: the head, then the 3-byte body.
        if (pending.includes('\r\n\r\n') && pending.endsWith('abc')) s.end(reply);
      });
    });
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
    const transport = tcpTransport((peer.address() as AddressInfo).port);
    for (let i = 0; i < 2; i++) {
      const res = await transport.request({ method: 'POST', path: '/wsman', headers: {}, body: Buffer.from('abc') });
      assert.equal(res.body.toString(), 'hello');
    }
    assert.equal(transport.connections, 2);
    assert.equal(transport.bytesSent, arrived);
    assert.equal(transport.bytesReceived, 2 * Buffer.byteLength(reply));
    transport.close();
    await new Promise<void>((r) => peer.close(() => r()));
  });
});

describe('HTTP transport over a kept-alive connection the server closes when idle', () => {
  /** Answers the first request on each connection, then closes the connection as the next one arrives. */
  let server: net.Server;
  let port = 0;
  let connections = 0;
  before(async () => {
    server = net.createServer((socket) => {
      connections++;
      let served = 0;
      socket.on('data', () => {
        if (served++ === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        else socket.destroy();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const post = { method: 'POST' as const, path: '/wsman', headers: {}, body: Buffer.from('<x/>') };

  it('re-sends an idempotent request once on a new connection', async () => {
    const transport = tcpTransport(port);
    await transport.request(post);
    const res = await transport.request({ ...post, idempotent: true });
    assert.equal(res.body.toString(), 'ok');
    assert.equal(transport.connections, 2);
    transport.close();
  });

  it('does not re-send a method call; it reports SCS_AMT_CONNECTION_LOST', async () => {
    const transport = tcpTransport(port);
    await transport.request(post);
    await assert.rejects(
      transport.request(post),
      (e) => isScsError(e, 'SCS_AMT_CONNECTION_LOST') && e.details.bytesReceived === 0,
    );
    transport.close();
    assert.ok(connections >= 3);
  });
});

describe('HTTP transport over TLS-PSK', () => {
  it('carries Digest-authenticated calls over one PSK session', async () => {
    const pid = generatePid();
    const pps = generatePps();
    const server = await startDigestServer({ psk: { pid, pps } });
    try {
      const transport = createSocketTransport({
        host: `127.0.0.1:${server.port}`,
        connect: (signal) =>
          connectPsk({ host: '127.0.0.1', port: server.port, pid, pps: new Secret(pps), timeoutMs: 5_000, signal }),
      });
      const c = createDigestClient({ transport, username: 'admin', password: new Secret('P@ssw0rd') });
      for (const body of ['<one/>', '<two/>']) {
        assert.equal((await c.post('/wsman', SOAP, Buffer.from(body))).body.toString(), body);
      }
      assert.equal(transport.connections, 1);
      transport.close();
    } finally {
      await server.close();
    }
  });

  it('passes TLS failures through with their SCS_TLS_* code', async () => {
    const pid = generatePid();
    const server = await startDigestServer({ psk: { pid, pps: generatePps() } });
    try {
      const transport = createSocketTransport({
        host: `127.0.0.1:${server.port}`,
        connect: (signal) =>
          connectPsk({
            host: '127.0.0.1',
            port: server.port,
            pid,
            pps: new Secret(generatePps()),
            timeoutMs: 5_000,
            signal,
          }),
      });
      await assert.rejects(
        transport.request({ method: 'POST', path: '/wsman', headers: {}, body: Buffer.alloc(0) }),
        (e) => isScsError(e, 'SCS_TLS_BAD_KEY'),
      );
    } finally {
      await server.close();
    }
  });
});
