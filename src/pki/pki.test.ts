import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { useTempStore } from '../../test/helpers/temp-store.ts';
import { isScsError } from '../errors.ts';
import { Secret } from '../secret.ts';
import { analyzeChain } from './chain.ts';
import { generateProvisioningChain, type GeneratedChain } from './generate-chain.ts';
import { readPkcs12 } from './pkcs12.ts';
import { chooseCertificate, importProvisioningCertificate, storeChain } from './service.ts';

const toPem = (der: Buffer): string => new X509Certificate(der).toString();

/** OpenSSL (a PKCS#12 writer that is not ours) makes the PFX files the reader must open. */
function opensslPfx(dir: string, chain: GeneratedChain, pass: string, extra: string[], name: string): Buffer {
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${chain.keyPkcs8.reveal().toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`;
  writeFileSync(path.join(dir, 'key.pem'), keyPem);
  writeFileSync(path.join(dir, 'leaf.pem'), toPem(chain.certificates[0] as Buffer));
  writeFileSync(path.join(dir, 'rest.pem'), chain.certificates.slice(1).map(toPem).join(''));
  const out = path.join(dir, name);
  execFileSync('openssl', [
    'pkcs12',
    '-export',
    '-inkey',
    path.join(dir, 'key.pem'),
    '-in',
    path.join(dir, 'leaf.pem'),
    '-certfile',
    path.join(dir, 'rest.pem'),
    '-passout',
    `pass:${pass}`,
    '-out',
    out,
    ...extra,
  ]);
  return readFileSync(out);
}

describe('provisioning certificate files', () => {
  let dir: string;
  let chain: GeneratedChain;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'scs-pki-'));
    chain = await generateProvisioningChain({ dnsSuffix: 'example.com' });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads an OpenSSL 3 PKCS#12 (PBES2, AES-256, HMAC-SHA-256) with its whole chain and key', () => {
    const pfx = opensslPfx(dir, chain, 'pfx-pass-1', [], 'aes.pfx');
    const got = readPkcs12(pfx, new Secret('pfx-pass-1'));
    assert.equal(got.certificates.length, 3);
    assert.deepEqual(
      new Set(got.certificates.map((c) => c.toString('hex'))),
      new Set(chain.certificates.map((c) => c.toString('hex'))),
    );
    assert.ok(
      new X509Certificate(chain.certificates[0] as Buffer).checkPrivateKey(
        analyzeChain(got.certificates, got.keyPkcs8).key,
      ),
    );
  });

  it('reads a legacy PKCS#12 (SHA-1 3DES PBE, HMAC-SHA-1) as older Windows exports it', () => {
    const pfx = opensslPfx(
      dir,
      chain,
      'legacy-pass',
      ['-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1'],
      'legacy.pfx',
    );
    const got = readPkcs12(pfx, new Secret('legacy-pass'));
    assert.equal(got.certificates.length, 3);
    assert.equal(analyzeChain(got.certificates, got.keyPkcs8).leafCommonName, 'provisioning.example.com');
  });

  it('names a wrong passphrase as such', () => {
    const pfx = opensslPfx(dir, chain, 'right', [], 'wrong.pfx');
    assert.throws(
      () => readPkcs12(pfx, new Secret('wrong')),
      (e) => isScsError(e, 'SCS_PKI_PASSPHRASE_WRONG'),
    );
  });

  it('refuses bytes that are not a PKCS#12 file', () => {
    assert.throws(
      () => readPkcs12(Buffer.from('not a pfx at all'), new Secret('x')),
      (e) => isScsError(e, 'SCS_PKI_FILE_INVALID'),
    );
  });

  it('orders the chain leaf to root and gives the root hashes OpenSSL computes', () => {
    const c = analyzeChain([...chain.certificates].reverse(), chain.keyPkcs8.reveal());
    assert.equal(c.certificates[0]?.raw.toString('hex'), chain.certificates[0]?.toString('hex'));
    writeFileSync(path.join(dir, 'root.pem'), toPem(chain.rootDer));
    const fp = (alg: string): string =>
      execFileSync('openssl', ['x509', '-in', path.join(dir, 'root.pem'), '-noout', '-fingerprint', `-${alg}`])
        .toString()
        .split('=')[1]!
        .trim()
        .replace(/:/g, '')
        .toLowerCase();
    assert.equal(c.rootSha256, fp('sha256'));
    assert.equal(c.rootSha1, fp('sha1'));
  });

  it('refuses a chain without its root, a leaf without the provisioning purpose, and an expired chain', async () => {
    assert.throws(
      () => analyzeChain(chain.certificates.slice(0, 2), chain.keyPkcs8.reveal()),
      (e) => isScsError(e, 'SCS_PKI_CHAIN_INVALID') && /root/.test(e.message),
    );
    const plain = await generateProvisioningChain({ dnsSuffix: 'example.com', withoutProvisioningEku: true });
    assert.throws(
      () => analyzeChain(plain.certificates, plain.keyPkcs8.reveal()),
      (e) => isScsError(e, 'SCS_PKI_CHAIN_INVALID') && /2\.16\.840\.1\.113741\.1\.2\.3/.test(e.message),
    );
    const old = await generateProvisioningChain({
      dnsSuffix: 'example.com',
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    assert.throws(
      () => analyzeChain(old.certificates, old.keyPkcs8.reveal()),
      (e) => isScsError(e, 'SCS_PKI_CERT_EXPIRED'),
    );
  });
});

describe('provisioning certificate store', () => {
  const t = useTempStore('scs-pki-store-');
  let chain: GeneratedChain;
  before(async () => {
    chain = await generateProvisioningChain({ dnsSuffix: 'example.com' });
  });

  it('stores the key sealed (never in the database file in clear) and lists the root hashes, suffix and expiry', async () => {
    const row = await storeChain(t.store, chain, { dnsSuffix: 'Example.COM', actor: 'test' });
    const [listed] = await t.store.pki.list();
    assert.equal(listed?.id, row.id);
    assert.equal(listed?.dnsSuffix, 'example.com');
    assert.equal(listed?.rootSha256.length, 64);
    assert.equal(listed?.rootSha1.length, 40);
    const db = readFileSync(path.join(t.dir, 'scs.db'));
    const key = chain.keyPkcs8.reveal();
    assert.equal(db.indexOf(key.subarray(40, 72)), -1, 'private key bytes in the database file');
    const opened = await t.store.pki.openKey(row.id, { actor: 'test', purpose: 'check' });
    assert.deepEqual(opened.reveal(), key);
    const audit = await t.store.audit.list({});
    assert.ok(audit.some((e) => e.action === 'pki.import'));
    assert.ok(audit.some((e) => e.action === 'pki.key_use'));
    await assert.rejects(storeChain(t.store, chain, { dnsSuffix: 'example.com', actor: 'test' }), (e) =>
      isScsError(e, 'SCS_PKI_CONFLICT'),
    );
  });

  it('refuses a DNS suffix the certificate CN is not inside', async () => {
    await assert.rejects(storeChain(t.store, chain, { dnsSuffix: 'example.org', actor: 'test' }), (e) =>
      isScsError(e, 'SCS_PKI_DNS_SUFFIX_MISMATCH'),
    );
  });

  it('imports a PEM file with chain and key as well as a PKCS#12 file', async () => {
    const keyPem = `-----BEGIN PRIVATE KEY-----\n${chain.keyPkcs8.reveal().toString('base64')}\n-----END PRIVATE KEY-----\n`;
    const pem = Buffer.from(chain.certificates.map(toPem).join('') + keyPem);
    const row = await importProvisioningCertificate(t.store, {
      file: pem,
      passphrase: undefined,
      dnsSuffix: 'example.com',
      actor: 'test',
    });
    assert.equal(row.leafCommonName, 'provisioning.example.com');
  });

  it('matches a hello hash list to a root, and names each reason it cannot', async () => {
    const row = await storeChain(t.store, chain, { dnsSuffix: 'example.com', actor: 'test' });
    const rows = await t.store.pki.list();
    const now = new Date();
    const sha256 = { algorithm: 'sha256' as const, hash: row.rootSha256 };
    const sha1 = { algorithm: 'sha1' as const, hash: row.rootSha1 };
    const other = { algorithm: 'sha256' as const, hash: 'ab'.repeat(32) };
    assert.equal(chooseCertificate(rows, [other, sha256], { now }).id, row.id);
    assert.equal(chooseCertificate(rows, [sha1], { now, deviceDomain: 'example.com' }).id, row.id);
    assert.throws(
      () => chooseCertificate(rows, [other], { now }),
      (e) => isScsError(e, 'SCS_PKI_NO_MATCHING_ROOT') && /MEBx/.test(e.message),
    );
    assert.throws(
      () => chooseCertificate(rows, [sha256], { now, deviceDomain: 'corp.test' }),
      (e) => isScsError(e, 'SCS_PKI_DNS_SUFFIX_MISMATCH') && /corp\.test/.test(e.message),
    );
    assert.throws(
      () => chooseCertificate(rows, [sha256], { now: new Date(Date.now() + 400 * 86_400_000) }),
      (e) => isScsError(e, 'SCS_PKI_CERT_EXPIRED') && /renew/.test(e.message),
    );
  });
});
