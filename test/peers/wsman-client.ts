import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { XMLParser } from 'fast-xml-parser';

/**
 * A small WS-Management-over-HTTP-Digest client for tests: its own Digest (RFC 2617, MD5,
 * qop=auth) and its own socket code, independent of both the server's src/amt client and the
 * simulator's Digest verifier, so a shared slip cannot pass unnoticed. Plain HTTP (16992) or
 * TLS-PSK (16993: identity = PID ASCII, key = the 32 PPS ASCII bytes, protocol.md §3).
 */
export interface TestClientOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  /** TLS-PSK to the device's TLS port; absent (and no `tls`): plain HTTP. */
  psk?: { pid: string; pps: string; minVersion?: tls.SecureVersion; maxVersion?: tls.SecureVersion };
  /** Certificate TLS (after a committed TLS setup): the device certificate must chain to `ca`. */
  tls?: { ca: string };
}

export interface TestReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const PSK_CIPHERS =
  'PSK-AES128-CBC-SHA:PSK-AES256-CBC-SHA:PSK-AES128-CBC-SHA256:PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384';

const md5 = (s: string): string => createHash('md5').update(s, 'utf8').digest('hex');

/** Parses `Digest k=v, k="v"` (values may hold commas inside quotes). */
export function parseChallenge(header: string): Map<string, string> {
  const out = new Map<string, string>();
  const body = header.replace(/^\s*Digest\s+/i, '');
  const re = /([a-zA-Z]+)\s*=\s*(?:"([^"]*)"|([^,\s]*))/g;
  for (let m = re.exec(body); m !== null; m = re.exec(body)) out.set((m[1] ?? '').toLowerCase(), m[2] ?? m[3] ?? '');
  return out;
}

export class TestWsmanClient {
  readonly #opts: TestClientOptions;
  readonly #agent: http.Agent;
  #challenge: { realm: string; nonce: string; opaque: string | undefined } | undefined;
  #nc = 0;
  /** Requests sent, 401 retries included. */
  requests = 0;
  /** Connections opened (TCP, or TLS handshakes). */
  connections = 0;

  constructor(opts: TestClientOptions) {
    this.#opts = opts;
    const psk = opts.psk;
    const certTls = opts.tls;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    // http.Agent opens its sockets through createConnection: make them TLS(-PSK) when asked.
    const setConnect = (connect: () => Duplex): void => {
      (agent as unknown as { createConnection: () => Duplex }).createConnection = () => {
        this.connections++;
        return connect();
      };
    };
    if (psk !== undefined) {
      setConnect(() =>
        tls.connect({
          host: opts.host,
          port: opts.port,
          ciphers: PSK_CIPHERS,
          minVersion: psk.minVersion ?? 'TLSv1',
          maxVersion: psk.maxVersion ?? 'TLSv1.2',
          checkServerIdentity: () => undefined,
          pskCallback: () => ({ identity: psk.pid, psk: Buffer.from(psk.pps, 'ascii') }),
        }),
      );
    } else if (certTls === undefined) {
      setConnect(() => net.connect({ host: opts.host, port: opts.port }));
    } else {
      // The chain is verified against the CA; the name is not (the certificate names the device, we dial an IP).
      setConnect(() =>
        tls.connect({ host: opts.host, port: opts.port, ca: certTls.ca, checkServerIdentity: () => undefined }),
      );
    }
    this.#agent = agent;
  }

  #authorization(): string | undefined {
    const c = this.#challenge;
    if (c === undefined) return undefined;
    const nc = (++this.#nc).toString(16).padStart(8, '0');
    const cnonce = randomBytes(8).toString('hex');
    const ha1 = md5(`${this.#opts.user}:${c.realm}:${this.#opts.password}`);
    const ha2 = md5('POST:/wsman');
    const response = md5(`${ha1}:${c.nonce}:${nc}:${cnonce}:auth:${ha2}`);
    return (
      `Digest username="${this.#opts.user}", realm="${c.realm}", nonce="${c.nonce}", uri="/wsman", ` +
      `response="${response}", qop=auth, nc=${nc}, cnonce="${cnonce}"` +
      (c.opaque === undefined ? '' : `, opaque="${c.opaque}"`)
    );
  }

  #send(xml: string, authorization: string | undefined): Promise<TestReply> {
    this.requests++;
    const body = Buffer.from(xml, 'utf8');
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.#opts.host,
          port: this.#opts.port,
          method: 'POST',
          path: '/wsman',
          agent: this.#agent,
          headers: {
            'Content-Type': 'application/soap+xml;charset=UTF-8',
            'Content-Length': body.length,
            ...(authorization === undefined ? {} : { Authorization: authorization }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('test client: no reply in 10 s')));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** POSTs an envelope, answering a 401 challenge (or a stale nonce) once. */
  async post(xml: string): Promise<TestReply> {
    let reply = await this.#send(xml, this.#authorization());
    if (reply.status === 401) {
      const header = reply.headers['www-authenticate'];
      if (typeof header !== 'string') return reply;
      const p = parseChallenge(header);
      this.#challenge = { realm: p.get('realm') ?? '', nonce: p.get('nonce') ?? '', opaque: p.get('opaque') };
      this.#nc = 0;
      reply = await this.#send(xml, this.#authorization());
    }
    return reply;
  }

  close(): void {
    this.#agent.destroy();
  }
}

const parser = new XMLParser({ removeNSPrefix: true, ignoreAttributes: false, parseTagValue: false });

/** The SOAP Body of a reply as plain objects, namespace prefixes removed. */
export function replyBody(xml: string): Record<string, unknown> {
  const doc = parser.parse(xml) as { Envelope?: { Body?: Record<string, unknown> } };
  const body = doc.Envelope?.Body;
  if (body === undefined) throw new Error(`not a SOAP envelope: ${xml.slice(0, 200)}`);
  return body;
}

/** The SOAP Header of a reply as plain objects. */
export function replyHeader(xml: string): Record<string, unknown> {
  const doc = parser.parse(xml) as { Envelope?: { Header?: Record<string, unknown> } };
  return doc.Envelope?.Header ?? {};
}

/** Text of a header field that may carry attributes (fast-xml-parser puts the text in #text). */
export function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && '#text' in v) return String((v as Record<string, unknown>)['#text']);
  return '';
}
