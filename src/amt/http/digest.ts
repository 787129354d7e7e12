import { createHash, hash, randomFillSync } from 'node:crypto';
import { ScsError } from '../../errors.ts';
import type { Secret } from '../../secret.ts';

/**
 * HTTP Digest as AMT speaks it (protocol.md §4; RFC 2617 §3, RFC 7616 §3.4): a 401 carries
 * `WWW-Authenticate: Digest realm=..., nonce=..., qop="auth"`; the client answers with
 * response = H(H(user:realm:password):nonce:nc:cnonce:qop:H(method:uri)). Pure functions here;
 * the 401-and-retry dance lives in digest-client.ts.
 */

export interface DigestChallenge {
  readonly realm: string;
  readonly nonce: string;
  /** The qop options offered; empty for an RFC 2069 challenge without qop. */
  readonly qop: readonly string[];
  /** As sent (MD5 when absent, RFC 7616 §3.3). */
  readonly algorithm: string | undefined;
  readonly opaque: string | undefined;
  /** stale=true: the nonce expired but the credentials were right (RFC 7616 §3.3). */
  readonly stale: boolean;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
const SPACE = /\s*/y;

/** The index after the white space at `at`: one sticky regex per gap, not one per character. */
function skipSpace(value: string, at: number): number {
  SPACE.lastIndex = at;
  SPACE.test(value);
  return SPACE.lastIndex;
}

function malformed(why: string, header: string): ScsError {
  return new ScsError('SCS_AMT_HTTP', `malformed WWW-Authenticate Digest challenge: ${why}`, {
    details: { header: header.slice(0, 300) },
  });
}

/**
 * Parses the auth-params of a `Digest` challenge: parameters in any order, with or without
 * spaces around `=` and `,`, values quoted (with backslash escapes) or bare tokens. When the
 * header lists several challenges (`Negotiate, Digest realm=...`), the Digest one is used.
 */
export function parseDigestChallenge(header: string | readonly string[]): DigestChallenge {
  const values = typeof header === 'string' ? [header] : header;
  const value = values.find((v) => /(^|,)\s*digest(\s|$)/i.test(v));
  if (value === undefined) throw malformed('no Digest challenge', values.join(' | '));
  const start = /(^|,)\s*digest(\s+|$)/i.exec(value);
  const params = new Map<string, string>();
  let i = (start?.index ?? 0) + (start?.[0].length ?? 0);
  for (;;) {
    i = skipSpace(value, i);
    while (value.charAt(i) === ',') {
      i = skipSpace(value, i + 1);
    }
    if (i >= value.length) break;
    TOKEN.lastIndex = i;
    const name = TOKEN.exec(value)?.[0];
    if (name === undefined) throw malformed(`unexpected "${value.charAt(i)}" at ${i}`, value);
    i = skipSpace(value, i + name.length);
    if (value.charAt(i) !== '=') {
      // A bare token after a comma starts the next challenge scheme (RFC 7235 §4.1): stop here.
      if (params.size > 0) break;
      throw malformed(`parameter "${name}" has no value`, value);
    }
    i = skipSpace(value, i + 1);
    let v: string;
    const close = value.charAt(i) === '"' ? value.indexOf('"', i + 1) : -1;
    const backslash = close < 0 ? -1 : value.indexOf('\\', i + 1);
    if (close >= 0 && (backslash < 0 || backslash > close)) {
      // A quoted value without escapes (AMT's always): as written.
      v = value.slice(i + 1, close);
      i = close + 1;
    } else if (value.charAt(i) === '"') {
      i++;
      let out = '';
      for (;;) {
        if (i >= value.length) throw malformed(`unterminated quoted value of "${name}"`, value);
        const c = value.charAt(i++);
        if (c === '"') break;
        out += c === '\\' && i < value.length ? value.charAt(i++) : c;
      }
      v = out;
    } else {
      TOKEN.lastIndex = i;
      const tok = TOKEN.exec(value)?.[0];
      if (tok === undefined) throw malformed(`parameter "${name}" has an empty value`, value);
      i += tok.length;
      v = tok;
    }
    params.set(name.toLowerCase(), v);
  }
  const realm = params.get('realm');
  const nonce = params.get('nonce');
  if (realm === undefined) throw malformed('no realm', value);
  if (nonce === undefined || nonce === '') throw malformed('no nonce', value);
  const qop = (params.get('qop') ?? '')
    .split(',')
    .map((q) => q.trim().toLowerCase())
    .filter((q) => q !== '');
  return {
    realm,
    nonce,
    qop,
    algorithm: params.get('algorithm'),
    opaque: params.get('opaque'),
    stale: (params.get('stale') ?? '').toLowerCase() === 'true',
  };
}

type HashName = 'md5' | 'sha256';

function hashOf(algorithm: string | undefined): { hash: HashName; sess: boolean } {
  switch ((algorithm ?? 'MD5').toUpperCase()) {
    case 'MD5':
      return { hash: 'md5', sess: false };
    case 'MD5-SESS':
      return { hash: 'md5', sess: true };
    case 'SHA-256':
      return { hash: 'sha256', sess: false };
    case 'SHA-256-SESS':
      return { hash: 'sha256', sess: true };
    default:
      throw new ScsError(
        'SCS_AMT_HTTP',
        `the device asks for Digest algorithm "${algorithm}", which is not supported`,
        {
          details: { algorithm: algorithm ?? null },
        },
      );
  }
}

// One-shot digest (UTF-8 input, hex output): no Hash object per MD5, two or three per request.
const h = (algorithm: HashName, s: string): string => hash(algorithm, s, 'hex');

/** The 16 raw bytes of MD5(user:realm:password): HA1, and (base64) AMT's DigestPassword (§6 step 2). */
export function digestHa1(username: string, realm: string, password: Secret<string>): Buffer {
  return createHash('md5').update(`${username}:${realm}:${password.reveal()}`, 'utf8').digest();
}

export interface DigestInput {
  readonly challenge: DigestChallenge;
  readonly username: string;
  readonly password: Secret<string>;
  readonly method: string;
  readonly uri: string;
  /** Nonce count, 1 for the first request on a nonce. */
  readonly nc: number;
  /** Client nonce; DigestSession draws one from crypto.randomBytes per request. */
  readonly cnonce: string;
}

/** Response digest (hex) for one request. */
export function digestResponse(input: DigestInput): string {
  const { challenge, username, password } = input;
  const { hash } = hashOf(challenge.algorithm);
  return responseFromHa1(input, h(hash, `${username}:${challenge.realm}:${password.reveal()}`));
}

/** The response from H(user:realm:password) already computed (a session computes it once per nonce). */
function responseFromHa1(input: Omit<DigestInput, 'username' | 'password'>, userHa1: string): string {
  const { challenge, method, uri } = input;
  const { hash, sess } = hashOf(challenge.algorithm);
  const ha1 = sess ? h(hash, `${userHa1}:${challenge.nonce}:${input.cnonce}`) : userHa1;
  const ha2 = h(hash, `${method}:${uri}`);
  if (challenge.qop.length === 0) return h(hash, `${ha1}:${challenge.nonce}:${ha2}`); // RFC 2069
  return h(hash, `${ha1}:${challenge.nonce}:${formatNc(input.nc)}:${input.cnonce}:auth:${ha2}`);
}

/** nc is exactly 8 lowercase hex digits (RFC 7616 §3.4). */
export function formatNc(nc: number): string {
  return nc.toString(16).padStart(8, '0');
}

const quote = (s: string): string => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;

/** The `Authorization` header value for one request. */
export function digestAuthorization(input: DigestInput): string {
  return authorizationWith(input, digestResponse(input));
}

function authorizationWith(input: DigestInput, response: string): string {
  const { challenge } = input;
  if (challenge.qop.length > 0 && !challenge.qop.includes('auth')) {
    throw new ScsError('SCS_AMT_HTTP', `the device offers Digest qop "${challenge.qop.join(',')}" but not "auth"`);
  }
  const parts = [
    `username=${quote(input.username)}`,
    `realm=${quote(challenge.realm)}`,
    `nonce=${quote(challenge.nonce)}`,
    `uri=${quote(input.uri)}`,
  ];
  if (challenge.algorithm !== undefined) parts.push(`algorithm=${challenge.algorithm}`);
  parts.push(`response=${quote(response)}`);
  if (challenge.qop.length > 0) parts.push('qop=auth', `nc=${formatNc(input.nc)}`, `cnonce=${quote(input.cnonce)}`);
  if (challenge.opaque !== undefined) parts.push(`opaque=${quote(challenge.opaque)}`);
  return `Digest ${parts.join(', ')}`;
}

/**
 * Client nonces come from a pool of random bytes refilled 4 KiB at a time: a synchronous
 * randomBytes(16) per request cost more CPU than the three MD5s of the response together
 * (a profile of bench/provision.ts). The bytes are as random; they are not secret either
 * (cnonce travels in clear).
 */
const CNONCE_BYTES = 16;
const cnoncePool = Buffer.alloc(4096);
let cnonceAt = cnoncePool.length;

function cnonce(): string {
  if (cnonceAt + CNONCE_BYTES > cnoncePool.length) {
    randomFillSync(cnoncePool);
    cnonceAt = 0;
  }
  const out = cnoncePool.toString('hex', cnonceAt, cnonceAt + CNONCE_BYTES);
  cnonceAt += CNONCE_BYTES;
  return out;
}

/**
 * One server nonce and its rising nonce count: on a kept-alive connection the same nonce is
 * reused with nc 1, 2, 3... (§4), so only the first request of a session costs a 401.
 */
export class DigestSession {
  readonly challenge: DigestChallenge;
  #nc = 0;
  #ha1: { readonly username: string; readonly password: Secret<string>; readonly value: string } | undefined;
  /**
   * What stays the same between requests of a session to one URI (a session posts to /wsman
   * only): the hash, H(method:uri) and the header's fixed parts. Computed at the first request;
   * the header is the one digestAuthorization builds, byte for byte (digest.test.ts).
   */
  #fixed:
    | {
        readonly username: string;
        readonly method: string;
        readonly uri: string;
        readonly hash: HashName;
        readonly sess: boolean;
        readonly ha2: string;
        readonly head: string;
        readonly tail: string;
      }
    | undefined;

  constructor(challenge: DigestChallenge) {
    this.challenge = challenge;
  }

  get count(): number {
    return this.#nc;
  }

  authorize(username: string, password: Secret<string>, method: string, uri: string): string {
    this.#nc++;
    const { challenge } = this;
    let fixed = this.#fixed;
    if (fixed?.username !== username || fixed.method !== method || fixed.uri !== uri) {
      const { hash, sess } = hashOf(challenge.algorithm);
      if (challenge.qop.length > 0 && !challenge.qop.includes('auth')) {
        throw new ScsError('SCS_AMT_HTTP', `the device offers Digest qop "${challenge.qop.join(',')}" but not "auth"`);
      }
      const parts = [
        `username=${quote(username)}`,
        `realm=${quote(challenge.realm)}`,
        `nonce=${quote(challenge.nonce)}`,
        `uri=${quote(uri)}`,
      ];
      if (challenge.algorithm !== undefined) parts.push(`algorithm=${challenge.algorithm}`);
      fixed = {
        username,
        method,
        uri,
        hash,
        sess,
        ha2: h(hash, `${method}:${uri}`),
        head: `Digest ${parts.join(', ')}`,
        tail: challenge.opaque === undefined ? '' : `, opaque=${quote(challenge.opaque)}`,
      };
      this.#fixed = fixed;
    }
    let ha1 = this.#ha1;
    if (ha1?.username !== username || ha1.password !== password) {
      ha1 = { username, password, value: h(fixed.hash, `${username}:${challenge.realm}:${password.reveal()}`) };
      this.#ha1 = ha1;
    }
    const { hash, ha2 } = fixed;
    if (challenge.qop.length === 0) {
      const key = fixed.sess ? h(hash, `${ha1.value}:${challenge.nonce}:${cnonce()}`) : ha1.value;
      // The response and cnonce are hex: quoted as they are (quote() would find nothing to escape).
      return `${fixed.head}, response="${h(hash, `${key}:${challenge.nonce}:${ha2}`)}"${fixed.tail}`; // RFC 2069
    }
    const cn = cnonce();
    const nc = formatNc(this.#nc);
    const key = fixed.sess ? h(hash, `${ha1.value}:${challenge.nonce}:${cn}`) : ha1.value;
    const response = h(hash, `${key}:${challenge.nonce}:${nc}:${cn}:auth:${ha2}`);
    return `${fixed.head}, response="${response}", qop=auth, nc=${nc}, cnonce="${cn}"${fixed.tail}`;
  }
}
