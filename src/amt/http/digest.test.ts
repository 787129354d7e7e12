import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { isScsError } from '../../errors.ts';
import { Secret } from '../../secret.ts';
import {
  digestAuthorization,
  digestHa1,
  digestResponse,
  DigestSession,
  formatNc,
  parseDigestChallenge,
  type DigestChallenge,
} from './digest.ts';

/** RFC 2617 §3.5 example. */
const RFC2617: DigestChallenge = {
  realm: 'testrealm@host.com',
  nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
  qop: ['auth', 'auth-int'],
  algorithm: undefined,
  opaque: '5ccc069c403ebaf9f0171e9517f40e41',
  stale: false,
};

function params(header: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of header.replace(/^Digest /, '').matchAll(/(\w+)=("([^"]*)"|[^,\s]+)/g)) {
    out.set(m[1] as string, m[3] ?? (m[2] as string));
  }
  return out;
}

describe('Digest response (RFC 2617 / 7616)', () => {
  it('reproduces the RFC 2617 §3.5 example', () => {
    const input = {
      challenge: RFC2617,
      username: 'Mufasa',
      password: new Secret('Circle Of Life'),
      method: 'GET',
      uri: '/dir/index.html',
      nc: 1,
      cnonce: '0a4f113b',
    };
    assert.equal(digestResponse(input), '6629fae49393a05397450978507c4ef1');
    const p = params(digestAuthorization(input));
    assert.equal(p.get('response'), '6629fae49393a05397450978507c4ef1');
    assert.equal(p.get('nc'), '00000001');
    assert.equal(p.get('qop'), 'auth');
    assert.equal(p.get('opaque'), RFC2617.opaque);
    assert.equal(p.get('uri'), '/dir/index.html');
  });

  it('follows the AMT formula of §4: MD5(HA1:nonce:nc:cnonce:auth:MD5(POST:/wsman))', () => {
    const md5 = (s: string) => createHash('md5').update(s).digest('hex');
    const realm = 'Digest:0123456789ABCDEF0123456789ABCDEF';
    const challenge: DigestChallenge = {
      realm,
      nonce: 'abc',
      qop: ['auth'],
      algorithm: undefined,
      opaque: undefined,
      stale: false,
    };
    const ha1 = md5(`admin:${realm}:P@ssw0rd`);
    const expected = md5(`${ha1}:abc:0000000a:cn:auth:${md5('POST:/wsman')}`);
    const got = digestResponse({
      challenge,
      username: 'admin',
      password: new Secret('P@ssw0rd'),
      method: 'POST',
      uri: '/wsman',
      nc: 10,
      cnonce: 'cn',
    });
    assert.equal(got, expected);
    assert.equal(digestHa1('admin', realm, new Secret('P@ssw0rd')).toString('hex'), ha1);
  });

  it('writes nc as 8 lowercase hex digits', () => {
    assert.equal(formatNc(1), '00000001');
    assert.equal(formatNc(255), '000000ff');
  });

  it('uses the RFC 2069 form when the challenge has no qop', () => {
    const md5 = (s: string) => createHash('md5').update(s).digest('hex');
    const challenge: DigestChallenge = { ...RFC2617, qop: [] };
    const input = {
      challenge,
      username: 'u',
      password: new Secret('p'),
      method: 'POST',
      uri: '/wsman',
      nc: 1,
      cnonce: 'x',
    };
    assert.equal(digestResponse(input), md5(`${md5(`u:${RFC2617.realm}:p`)}:${RFC2617.nonce}:${md5('POST:/wsman')}`));
    assert.ok(!params(digestAuthorization(input)).has('nc'));
  });

  it('refuses a challenge that offers only auth-int, and an unknown algorithm', () => {
    const input = { username: 'u', password: new Secret('p'), method: 'POST', uri: '/', nc: 1, cnonce: 'x' };
    assert.throws(
      () => digestAuthorization({ ...input, challenge: { ...RFC2617, qop: ['auth-int'] } }),
      (e) => isScsError(e, 'SCS_AMT_HTTP'),
    );
    assert.throws(
      () => digestAuthorization({ ...input, challenge: { ...RFC2617, algorithm: 'SHA-512-256' } }),
      (e) => isScsError(e, 'SCS_AMT_HTTP'),
    );
  });

  it('never puts the password into the header', () => {
    const header = new DigestSession(RFC2617).authorize('admin', new Secret('Sup3r$ecret'), 'POST', '/wsman');
    assert.ok(!header.includes('Sup3r$ecret'));
  });

  it('raises nc with every request on one nonce and draws a fresh cnonce each time', () => {
    const s = new DigestSession({ ...RFC2617, qop: ['auth'] });
    const a = params(s.authorize('admin', new Secret('x'), 'POST', '/wsman'));
    const b = params(s.authorize('admin', new Secret('x'), 'POST', '/wsman'));
    assert.equal(a.get('nc'), '00000001');
    assert.equal(b.get('nc'), '00000002');
    assert.notEqual(a.get('cnonce'), b.get('cnonce'));
    assert.match(a.get('cnonce') ?? '', /^[0-9a-f]{32}$/);
    assert.equal(s.count, 2);
  });
});

describe('Digest session', () => {
  it('writes the header digestAuthorization writes, byte for byte, for every algorithm, qop and opaque', () => {
    const password = new Secret('P@ssw0rd');
    for (const algorithm of [undefined, 'MD5', 'MD5-sess', 'SHA-256', 'SHA-256-sess']) {
      for (const qop of [[], ['auth'], ['auth', 'auth-int']]) {
        for (const opaque of [undefined, 'opaque "quoted"']) {
          const challenge: DigestChallenge = { ...RFC2617, algorithm, qop, opaque };
          const session = new DigestSession(challenge);
          for (let nc = 1; nc <= 3; nc++) {
            // A second URI and user in the same session, as a caller may do.
            const uri = nc === 3 ? '/other' : '/wsman';
            const username = nc === 3 ? 'admin2' : 'admin';
            const header = session.authorize(username, password, 'POST', uri);
            const cnonce = params(header).get('cnonce') ?? '';
            const expected = digestAuthorization({ challenge, username, password, method: 'POST', uri, nc, cnonce });
            if (qop.length > 0 || !algorithm?.endsWith('-sess'))
              assert.equal(header, expected, `${algorithm} ${qop.join(',')} ${nc}`);
            else assert.equal(header.replace(/response="[^"]*"/, ''), expected.replace(/response="[^"]*"/, ''));
          }
        }
      }
    }
  });
});

describe('Digest challenge parsing', () => {
  it('reads the AMT challenge of §4', () => {
    const c = parseDigestChallenge(
      'Digest realm="Digest:A1B2C3D4E5F60718293A4B5C6D7E8F90", nonce="mK3Vq1xY0JQAAAAAnCGZRB",stale="false",qop="auth"',
    );
    assert.deepEqual(c, {
      realm: 'Digest:A1B2C3D4E5F60718293A4B5C6D7E8F90',
      nonce: 'mK3Vq1xY0JQAAAAAnCGZRB',
      qop: ['auth'],
      algorithm: undefined,
      opaque: undefined,
      stale: false,
    });
  });

  it('accepts any order, missing or extra spaces, unquoted values and odd case', () => {
    const c = parseDigestChallenge('digest   qop=auth,STALE=TRUE ,  nonce = "n=1" ,algorithm=MD5,realm="r \\"x\\""');
    assert.equal(c.realm, 'r "x"');
    assert.equal(c.nonce, 'n=1');
    assert.deepEqual(c.qop, ['auth']);
    assert.equal(c.algorithm, 'MD5');
    assert.equal(c.stale, true);
    // A plain quoted value before an escaped one, and an escaped backslash at a value's end.
    const d = parseDigestChallenge('Digest realm="plain", nonce="a\\"b", opaque="x\\\\"');
    assert.deepEqual([d.realm, d.nonce, d.opaque], ['plain', 'a"b', 'x\\']);
  });

  it('reads a qop list and finds Digest among several challenges or header lines', () => {
    const c = parseDigestChallenge([
      'Negotiate',
      'Basic realm="b", Digest realm="d", nonce="n", qop="auth-int, auth", Bearer x=1',
    ]);
    assert.equal(c.realm, 'd');
    assert.deepEqual(c.qop, ['auth-int', 'auth']);
  });

  it('says what is missing in a broken challenge', () => {
    for (const [header, why] of [
      ['Basic realm="x"', /no Digest challenge/],
      ['Digest nonce="n"', /no realm/],
      ['Digest realm="r"', /no nonce/],
      ['Digest realm="r, nonce=n', /unterminated/],
      ['Digest realm', /has no value/],
    ] as const) {
      assert.throws(
        () => parseDigestChallenge(header),
        (e) => isScsError(e, 'SCS_AMT_HTTP') && why.test(e.message),
        header,
      );
    }
  });
});
