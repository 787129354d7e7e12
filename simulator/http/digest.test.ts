import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { digestResponse, formatChallenge, NonceStore, parseDigestAuthorization, verifyDigest } from './digest.ts';

const REALM = 'Digest:0123456789ABCDEF0123456789ABCDEF';
const ha1 = (user: string, pass: string): Buffer => createHash('md5').update(`${user}:${REALM}:${pass}`).digest();

function setup(now = { t: 1_000_000 }) {
  const nonces = new NonceStore(() => now.t, 60_000);
  const lookupHa1 = (u: string): Buffer | undefined => (u === 'admin' ? ha1('admin', 'P@ssw0rd') : undefined);
  const check = { realm: REALM, method: 'POST', url: '/wsman', lookupHa1, nonces };
  const header = (
    nonce: string,
    nc: string,
    over: { password?: string; user?: string; realm?: string } = {},
  ): string => {
    const response = digestResponse(ha1(over.user ?? 'admin', over.password ?? 'P@ssw0rd'), {
      nonce,
      nc,
      cnonce: 'abc',
      qop: 'auth',
      method: 'POST',
      uri: '/wsman',
    });
    return `Digest username="${over.user ?? 'admin'}", realm="${over.realm ?? REALM}", nonce="${nonce}", uri="/wsman", qop=auth, nc=${nc}, cnonce="abc", response="${response}"`;
  };
  return { now, nonces, check, header };
}

describe('Digest challenge', () => {
  it('is written exactly as AMT writes it', () => {
    assert.equal(
      formatChallenge(REALM, 'NONCE', false),
      `Digest realm="${REALM}", nonce="NONCE",stale="false",qop="auth"`,
    );
  });

  it('issues random base64 nonces without = padding', () => {
    const store = new NonceStore(() => 0);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const n = store.issue();
      assert.match(n, /^[A-Za-z0-9+/]{24}$/);
      seen.add(n);
    }
    assert.equal(seen.size, 200);
  });
});

describe('Digest Authorization parsing', () => {
  it('accepts parameters in any order, with or without spaces, quoted or bare', () => {
    const forms = [
      'Digest username="admin", realm="R", nonce="n+/1", uri="/wsman", qop=auth, nc=00000001, cnonce="c", response="r", algorithm=MD5',
      'Digest response="r",nc=00000001,qop="auth",cnonce="c",uri="/wsman",nonce="n+/1",realm="R",username="admin",algorithm="MD5"',
      'digest   username = "admin" ,realm="R",nonce="n+/1" , uri="/wsman",qop=auth,nc="00000001",cnonce=c,response=r,algorithm=md5',
    ];
    for (const f of forms) {
      const p = parseDigestAuthorization(f);
      assert.ok(p, f);
      assert.equal(p.get('username'), 'admin');
      assert.equal(p.get('nonce'), 'n+/1');
      assert.equal(p.get('qop'), 'auth');
      assert.equal(p.get('nc'), '00000001');
      assert.equal(p.get('algorithm')?.toUpperCase(), 'MD5');
    }
  });

  it('honours backslash escapes in quoted values and refuses broken syntax', () => {
    assert.equal(parseDigestAuthorization('Digest username="a\\"b"')?.get('username'), 'a"b');
    assert.equal(parseDigestAuthorization('Basic YWRtaW46YWRtaW4='), undefined);
    assert.equal(parseDigestAuthorization('Digest username="open'), undefined);
    assert.equal(parseDigestAuthorization('Digest username="a" realm="b"'), undefined);
    assert.equal(parseDigestAuthorization('Digest username="a", username="b"'), undefined);
  });
});

describe('Digest verification', () => {
  it('accepts the nonce again with a rising nc and refuses a reused or lower nc', () => {
    const { nonces, check, header } = setup();
    const nonce = nonces.issue();
    assert.deepEqual(verifyDigest(header(nonce, '00000001'), check), { ok: true, username: 'admin' });
    assert.deepEqual(verifyDigest(header(nonce, '00000002'), check), { ok: true, username: 'admin' });
    assert.deepEqual(verifyDigest(header(nonce, '0000000A'), check), { ok: true, username: 'admin' });
    assert.equal(verifyDigest(header(nonce, '0000000a'), check).ok, false);
    const replay = verifyDigest(header(nonce, '00000002'), check);
    assert.deepEqual(replay, { ok: false, stale: false, why: 'replay' });
  });

  it('answers stale for right credentials on an expired or unknown nonce', () => {
    const { now, nonces, check, header } = setup();
    const nonce = nonces.issue();
    now.t += 60_001;
    assert.deepEqual(verifyDigest(header(nonce, '00000001'), check), { ok: false, stale: true, why: 'stale' });
    assert.deepEqual(verifyDigest(header('made-up', '00000001'), check), { ok: false, stale: true, why: 'stale' });
  });

  it('refuses a wrong password without consuming the nonce count', () => {
    const { nonces, check, header } = setup();
    const nonce = nonces.issue();
    assert.deepEqual(verifyDigest(header(nonce, '00000001', { password: 'wrong' }), check), {
      ok: false,
      stale: false,
      why: 'response',
    });
    assert.equal(verifyDigest(header(nonce, '00000001'), check).ok, true);
  });

  it('refuses an unknown user, another realm, a missing header and qop other than auth', () => {
    const { nonces, check, header } = setup();
    const nonce = nonces.issue();
    assert.equal(verifyDigest(undefined, check).ok, false);
    assert.deepEqual(verifyDigest(header(nonce, '00000001', { user: 'root' }), check), {
      ok: false,
      stale: false,
      why: 'user',
    });
    assert.deepEqual(verifyDigest(header(nonce, '00000002', { realm: 'Digest:X' }), check), {
      ok: false,
      stale: false,
      why: 'realm',
    });
    const noQop = header(nonce, '00000003').replace('qop=auth, ', '');
    assert.deepEqual(verifyDigest(noQop, check), { ok: false, stale: false, why: 'malformed' });
    const authInt = header(nonce, '00000003').replace('qop=auth', 'qop=auth-int');
    assert.deepEqual(verifyDigest(authInt, check), { ok: false, stale: false, why: 'malformed' });
  });

  it('accepts an absolute digest-uri naming the same path, and refuses another path', () => {
    const { nonces, check } = setup();
    const nonce = nonces.issue();
    const make = (uri: string, nc: string): string => {
      const response = digestResponse(ha1('admin', 'P@ssw0rd'), {
        nonce,
        nc,
        cnonce: 'c',
        qop: 'auth',
        method: 'POST',
        uri,
      });
      return `Digest username="admin",realm="${REALM}",nonce="${nonce}",uri="${uri}",qop=auth,nc=${nc},cnonce="c",response="${response}"`;
    };
    assert.equal(verifyDigest(make('http://10.0.0.5:16992/wsman', '00000001'), check).ok, true);
    assert.equal(verifyDigest(make('/other', '00000002'), check).ok, false);
  });
});
