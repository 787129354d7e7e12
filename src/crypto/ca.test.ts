import assert from 'node:assert/strict';
import { generateKeyPairSync, webcrypto, X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { isScsError } from '../errors.ts';
import { createCaMaterial, loadCa } from './ca.ts';

const RSA: webcrypto.RsaHashedImportParams & webcrypto.RsaHashedKeyGenParams = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
};

/** Stands in for the device side of GeneratePKCS10RequestEx: its own key, its own CSR. */
async function deviceCsr(): Promise<{ csrDer: Buffer; keyPem: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const priv = await webcrypto.subtle.importKey(
    'pkcs8',
    privateKey.export({ type: 'pkcs8', format: 'der' }),
    RSA,
    true,
    ['sign'],
  );
  const pub = await webcrypto.subtle.importKey('spki', publicKey.export({ type: 'spki', format: 'der' }), RSA, true, [
    'verify',
  ]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=device',
    keys: { privateKey: priv, publicKey: pub },
    signingAlgorithm: RSA,
  });
  return { csrDer: Buffer.from(csr.rawData), keyPem };
}

describe('SCS certificate authority', () => {
  it('issues a certificate for the device key that a TLS client trusting the CA accepts', async () => {
    const ca = await loadCa(await createCaMaterial());
    const { csrDer, keyPem } = await deviceCsr();
    const issued = await ca.issueDeviceCertificate(csrDer, {
      dnsName: 'amt-0001.example.test',
      uuid: '11223344-5566-7788-99aa-bbccddeeff00',
    });
    const cert = new X509Certificate(issued.der);
    assert.ok(cert.verify(new X509Certificate(ca.certPem).publicKey));
    assert.equal(cert.checkHost('amt-0001.example.test'), 'amt-0001.example.test');
    assert.ok(issued.notAfter > new Date());

    const server = tls.createServer({ key: keyPem, cert: issued.pem }, (s) => s.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const reply = await new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: ca.certPem, servername: 'amt-0001.example.test' }, () => {
          s.once('data', (d: Buffer) => resolve(d.toString()));
        });
        s.on('error', reject);
      });
      assert.equal(reply, 'ok');
    } finally {
      server.close();
    }
  });

  it('refuses a request whose signature does not verify', async () => {
    const ca = await loadCa(await createCaMaterial());
    const { csrDer } = await deviceCsr();
    const tampered = Buffer.from(csrDer);
    tampered[tampered.length - 5] = (tampered[tampered.length - 5] as number) ^ 0xff;
    await assert.rejects(ca.issueDeviceCertificate(tampered, { dnsName: 'x.test', uuid: 'u' }), (e) =>
      isScsError(e, 'SCS_CERT_REQUEST_INVALID'),
    );
    await assert.rejects(ca.issueDeviceCertificate(Buffer.from('junk'), { dnsName: 'x.test', uuid: 'u' }), (e) =>
      isScsError(e, 'SCS_CERT_REQUEST_INVALID'),
    );
  });
});
