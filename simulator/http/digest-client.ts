import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { parseDigestAuthorization } from './digest.ts';

/**
 * A small HTTP Digest client for the simulator's own tests and tools: keep-alive, the nonce
 * reused with a rising nc, a retry after a 401. It is deliberately not the server's WS-Man
 * client (src/amt), so a bug there cannot hide behind the same bug here.
 */
export interface DigestParams {
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  qop: string;
  nc: string;
  cnonce: string;
  response: string;
  algorithm?: string;
}

/** Typical client layout: `Digest username="..", realm="..", ..., qop=auth, nc=00000001, ...`. */
export function formatAuthorization(p: DigestParams): string {
  const parts = [
    `username="${p.username}"`,
    `realm="${p.realm}"`,
    `nonce="${p.nonce}"`,
    `uri="${p.uri}"`,
    `response="${p.response}"`,
    `qop=${p.qop}`,
    `nc=${p.nc}`,
    `cnonce="${p.cnonce}"`,
  ];
  if (p.algorithm !== undefined) parts.push(`algorithm=${p.algorithm}`);
  return `Digest ${parts.join(', ')}`;
}

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface DigestClientOptions {
  /** Opens a connection to the device (net.connect for 16992, a TLS-PSK/TLS socket for 16993). */
  connect: () => Duplex;
  username: string;
  password: string;
  /** How the Authorization header is written (to exercise the server's tolerance). */
  format?: (p: DigestParams) => string;
  method?: string;
  path?: string;
}

const md5 = (s: string): string => createHash('md5').update(s, 'utf8').digest('hex');

export class DigestClient {
  readonly #agent: http.Agent;
  #challenge: { realm: string; nonce: string } | undefined;
  #nc = 0;
  /** Connections opened so far (a keep-alive reuse does not count). */
  connections = 0;

  constructor(private readonly opts: DigestClientOptions) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    // http.Agent's own typing wants a net.Socket; any Duplex works at run time (https does the same).
    (agent as unknown as { createConnection: () => Duplex }).createConnection = () => {
      this.connections++;
      return opts.connect();
    };
    this.#agent = agent;
  }

  /** Sends one request with exactly these headers (no retry). */
  raw(body: string, headers: Record<string, string> = {}): Promise<HttpResult> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent: this.#agent,
          method: this.opts.method ?? 'POST',
          path: this.opts.path ?? '/wsman',
          headers: { 'Content-Type': 'application/soap+xml; charset=utf-8', ...headers },
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
      req.on('error', reject);
      req.end(body);
    });
  }

  /** The Authorization header for the next request on the current nonce (nc + 1). */
  authorization(overrides: Partial<DigestParams> = {}): string | undefined {
    const ch = this.#challenge;
    if (ch === undefined) return undefined;
    this.#nc++;
    const uri = this.opts.path ?? '/wsman';
    const method = this.opts.method ?? 'POST';
    const base = {
      username: this.opts.username,
      realm: ch.realm,
      nonce: ch.nonce,
      uri,
      qop: 'auth',
      nc: this.#nc.toString(16).padStart(8, '0'),
      cnonce: randomBytes(8).toString('hex'),
      ...overrides,
    };
    const ha1 = md5(`${base.username}:${base.realm}:${this.opts.password}`);
    const response = md5(`${ha1}:${base.nonce}:${base.nc}:${base.cnonce}:${base.qop}:${md5(`${method}:${base.uri}`)}`);
    return (this.opts.format ?? formatAuthorization)({ ...base, response, ...overrides });
  }

  /** Learns realm and nonce from a 401's WWW-Authenticate. */
  learn(wwwAuthenticate: string | undefined): void {
    const p = wwwAuthenticate === undefined ? undefined : parseDigestAuthorization(wwwAuthenticate);
    const realm = p?.get('realm');
    const nonce = p?.get('nonce');
    if (realm === undefined || nonce === undefined) throw new Error('no Digest challenge in the 401');
    this.#challenge = { realm, nonce };
    this.#nc = 0;
  }

  /** POST with Digest: reuses the nonce (rising nc); on a 401 learns the new nonce and retries once. */
  async post(body: string): Promise<HttpResult> {
    const auth = this.authorization();
    const first = await this.raw(body, auth === undefined ? {} : { Authorization: auth });
    if (first.status !== 401) return first;
    this.learn(first.headers['www-authenticate']);
    return this.raw(body, { Authorization: this.authorization() ?? '' });
  }

  close(): void {
    this.#agent.destroy();
  }
}
