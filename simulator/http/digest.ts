import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * HTTP Digest as AMT does it (protocol.md §4; RFC 2617 / RFC 7616 with MD5 and qop=auth).
 * The parser is deliberately tolerant of what real clients send; the checks are strict about
 * what matters: realm, credentials, and a nonce count that only ever rises.
 */

/** `Digest realm="...", nonce="...",stale="false",qop="auth"`: AMT's exact spacing. */
export function formatChallenge(realm: string, nonce: string, stale: boolean): string {
  return `Digest realm="${realm}", nonce="${nonce}",stale="${stale ? 'true' : 'false'}",qop="auth"`;
}

/**
 * Parses the parameters of an `Authorization: Digest ...` header: any order, with or without
 * spaces around `=` and `,`, values quoted (backslash escapes honoured) or bare tokens. Returns
 * undefined when the scheme is not Digest or the syntax is broken. Names are lower-cased.
 */
export function parseDigestAuthorization(header: string): Map<string, string> | undefined {
  const m = /^\s*digest\s+/i.exec(header);
  if (m === null) return undefined;
  const out = new Map<string, string>();
  let i = m[0].length;
  const s = header;
  const skipWs = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  for (;;) {
    skipWs();
    while (s[i] === ',') {
      i++;
      skipWs();
    }
    if (i >= s.length) break;
    const nameMatch = /^[A-Za-z0-9_-]+/.exec(s.slice(i));
    if (nameMatch === null) return undefined;
    const name = nameMatch[0].toLowerCase();
    i += nameMatch[0].length;
    skipWs();
    if (s[i] !== '=') return undefined;
    i++;
    skipWs();
    let value = '';
    if (s[i] === '"') {
      i++;
      let closed = false;
      while (i < s.length) {
        const c = s[i] as string;
        if (c === '\\' && i + 1 < s.length) {
          value += s[i + 1] as string;
          i += 2;
          continue;
        }
        if (c === '"') {
          closed = true;
          i++;
          break;
        }
        value += c;
        i++;
      }
      if (!closed) return undefined;
    } else {
      const tok = /^[^\s,]*/.exec(s.slice(i))?.[0] ?? '';
      value = tok;
      i += tok.length;
    }
    if (out.has(name)) return undefined;
    out.set(name, value);
    skipWs();
    if (i < s.length && s[i] !== ',') return undefined;
  }
  return out;
}

function md5hex(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}

/** RFC 2617 §3.2.2.1 with qop=auth: MD5(HA1:nonce:nc:cnonce:qop:MD5(method:uri)). */
export function digestResponse(
  ha1: Buffer,
  p: { nonce: string; nc: string; cnonce: string; qop: string; method: string; uri: string },
): string {
  const ha2 = md5hex(`${p.method}:${p.uri}`);
  return md5hex(`${ha1.toString('hex')}:${p.nonce}:${p.nc}:${p.cnonce}:${p.qop}:${ha2}`);
}

interface NonceEntry {
  issuedAt: number;
  /** Highest nonce count accepted so far (0: none yet). */
  lastNc: number;
}

/**
 * The nonces a device has issued, shared by all its connections (a client may retry on a new
 * connection with the nonce from a 401). Each nonce lives `ttlMs`; its nonce count must rise
 * with every use, so a replayed or reordered request is refused.
 */
export class NonceStore {
  readonly #nonces = new Map<string, NonceEntry>();

  constructor(
    private readonly clock: () => number,
    readonly ttlMs = 300_000,
    private readonly max = 4096,
  ) {}

  /** 18 random bytes: 24 base64 characters, never `=` padding (one widely used client strips it). */
  issue(): string {
    if (this.#nonces.size >= this.max) {
      const oldest = this.#nonces.keys().next().value;
      if (oldest !== undefined) this.#nonces.delete(oldest);
    }
    const nonce = randomBytes(18).toString('base64').replace(/=+$/, '');
    this.#nonces.set(nonce, { issuedAt: this.clock(), lastNc: 0 });
    return nonce;
  }

  /** 'stale': unknown or expired; 'replay': nc not above the last one accepted. */
  use(nonce: string, nc: number): 'ok' | 'stale' | 'replay' {
    const e = this.#nonces.get(nonce);
    if (e === undefined) return 'stale';
    if (this.clock() - e.issuedAt > this.ttlMs) {
      this.#nonces.delete(nonce);
      return 'stale';
    }
    if (nc <= e.lastNc) return 'replay';
    e.lastNc = nc;
    return 'ok';
  }

  clear(): void {
    this.#nonces.clear();
  }
}

export type DigestOutcome =
  | { ok: true; username: string }
  | { ok: false; stale: boolean; why: 'missing' | 'malformed' | 'realm' | 'user' | 'response' | 'stale' | 'replay' };

export interface DigestCheck {
  realm: string;
  method: string;
  /** The request-target as received (`/wsman`). */
  url: string;
  lookupHa1: (username: string) => Buffer | undefined;
  nonces: NonceStore;
}

/**
 * Verifies an Authorization header. Credentials are checked before the nonce is consumed, so a
 * wrong password does not burn a nonce count; a right answer on an unknown or expired nonce is
 * `stale` (the client may retry with the fresh nonce without asking its user again).
 */
export function verifyDigest(header: string | undefined, check: DigestCheck): DigestOutcome {
  if (header === undefined) return { ok: false, stale: false, why: 'missing' };
  const p = parseDigestAuthorization(header);
  if (p === undefined) return { ok: false, stale: false, why: 'malformed' };
  const username = p.get('username');
  const realm = p.get('realm');
  const nonce = p.get('nonce');
  const uri = p.get('uri');
  const response = p.get('response');
  const qop = p.get('qop');
  const nc = p.get('nc');
  const cnonce = p.get('cnonce');
  const algorithm = p.get('algorithm');
  if (
    username === undefined ||
    realm === undefined ||
    nonce === undefined ||
    uri === undefined ||
    response === undefined ||
    qop === undefined ||
    nc === undefined ||
    cnonce === undefined
  ) {
    return { ok: false, stale: false, why: 'malformed' };
  }
  if (qop.toLowerCase() !== 'auth' || !/^[0-9a-fA-F]{8}$/.test(nc) || !/^[0-9a-fA-F]{32}$/.test(response)) {
    return { ok: false, stale: false, why: 'malformed' };
  }
  if (algorithm !== undefined && algorithm.toUpperCase() !== 'MD5')
    return { ok: false, stale: false, why: 'malformed' };
  if (!uriMatches(uri, check.url)) return { ok: false, stale: false, why: 'malformed' };
  if (realm !== check.realm) return { ok: false, stale: false, why: 'realm' };
  const ha1 = check.lookupHa1(username);
  if (ha1 === undefined) return { ok: false, stale: false, why: 'user' };
  const expected = digestResponse(ha1, { nonce, nc, cnonce, qop, method: check.method, uri });
  if (!timingSafeEqual(Buffer.from(expected, 'ascii'), Buffer.from(response.toLowerCase(), 'ascii'))) {
    return { ok: false, stale: false, why: 'response' };
  }
  const used = check.nonces.use(nonce, parseInt(nc, 16));
  if (used === 'stale') return { ok: false, stale: true, why: 'stale' };
  if (used === 'replay') return { ok: false, stale: false, why: 'replay' };
  return { ok: true, username };
}

/** The digest-uri must name the requested resource: the same request-target, or an absolute URI with that path. */
function uriMatches(digestUri: string, url: string): boolean {
  if (digestUri === url) return true;
  try {
    const u = new URL(digestUri);
    return u.pathname + u.search === url;
  } catch {
    return false;
  }
}
