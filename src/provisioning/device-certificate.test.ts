import assert from 'node:assert/strict';
import { once } from 'node:events';
import { webcrypto, X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { before, describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { connectTls, tlsSecureContext } from '../amt/tls-psk.ts';
import { createCaMaterial, type CaMaterial } from '../crypto/ca.ts';
import { isScsError } from '../errors.ts';
import { createDeviceCertificateIssuer } from './device-certificate.ts';

x509.cryptoProvider.set(webcrypto);

const ALG = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
};

/** A device key pair and its PKCS#10 request, built independently with @peculiar/x509. */
async function deviceRequest(): Promise<{ der: Buffer; keyPem: string }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=ignored', keys, signingAlgorithm: ALG });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return {
    der: Buffer.from(csr.rawData),
    keyPem: `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64')}\n-----END PRIVATE KEY-----\n`,
  };
}

describe('device certificates signed with node:crypto', () => {
  let material: CaMaterial;
  let request: { der: Buffer; keyPem: string };
  before(async () => {
    material = await createCaMaterial('issuer test CA');
    request = await deviceRequest();
  });

  it('issues a certificate Node and @peculiar/x509 both read, signed by the CA, naming the device', async () => {
    const issuer = createDeviceCertificateIssuer(material);
    const uuid = '4c4c4544-0035-5910-8051-b8c04f4e5a31';
    const issued = await issuer.issueDeviceCertificate(request.der, {
      dnsName: 'amt-4c4c4544.lab.example',
      uuid,
      validityDays: 30,
    });
    const cert = new X509Certificate(issued.der);
    const caCert = new X509Certificate(material.certPem);
    assert.ok(cert.checkIssued(caCert));
    assert.ok(cert.verify(caCert.publicKey));
    assert.equal(cert.ca, false);
    assert.equal(cert.subjectAltName, 'DNS:amt-4c4c4544.lab.example');
    assert.match(cert.subject, /CN=amt-4c4c4544\.lab\.example/);
    assert.match(cert.subject, new RegExp(`OU=${uuid}`));
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    assert.equal(cert.serialNumber.toLowerCase(), issued.serialNumber);
    assert.equal(cert.fingerprint256.replaceAll(':', '').toLowerCase(), issued.sha256Fingerprint);
    assert.equal(new Date(cert.validTo).getTime(), issued.notAfter.getTime());
    assert.equal(issued.pem, cert.toString());
    const peculiar = new x509.X509Certificate(issued.der);
    assert.ok(
      await peculiar.verify({ publicKey: await new x509.X509Certificate(material.certPem).publicKey.export() }),
    );
    const aki = peculiar.getExtension(x509.AuthorityKeyIdentifierExtension);
    const ski = new x509.X509Certificate(material.certPem).getExtension(x509.SubjectKeyIdentifierExtension);
    assert.equal(aki?.keyId, ski?.keyId);
    const ku = peculiar.getExtension(x509.KeyUsagesExtension);
    assert.equal(ku?.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
    assert.equal(peculiar.getExtension(x509.BasicConstraintsExtension)?.ca, false);
  });

  it('serves TLS that a client pinned to the CA accepts for the device name and refuses for another', async () => {
    const issuer = createDeviceCertificateIssuer(material);
    const issued = await issuer.issueDeviceCertificate(request.der, { dnsName: 'amt-1.example', uuid: 'u' });
    const server = tls.createServer({ key: request.keyPem, cert: issued.pem }, (s) => s.end());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      const ok = await connectTls({
        host: '127.0.0.1',
        port,
        ca: material.certPem,
        servername: 'amt-1.example',
        timeoutMs: 5000,
      });
      ok.destroy();
      // The same through a context built once (what the runner shares across devices).
      const secureContext = tlsSecureContext({ ca: material.certPem });
      const shared = await connectTls({
        host: '127.0.0.1',
        port,
        ca: material.certPem,
        secureContext,
        servername: 'amt-1.example',
        timeoutMs: 5000,
      });
      shared.destroy();
      await assert.rejects(
        connectTls({
          host: '127.0.0.1',
          port,
          ca: material.certPem,
          secureContext,
          servername: 'amt-9.example',
          timeoutMs: 5000,
        }),
        (e) => isScsError(e, 'SCS_TLS_CERT_REJECTED'),
      );
      await assert.rejects(
        connectTls({ host: '127.0.0.1', port, ca: material.certPem, servername: 'amt-2.example', timeoutMs: 5000 }),
        (e) => isScsError(e, 'SCS_TLS_CERT_REJECTED'),
      );
    } finally {
      server.close();
    }
  });

  it('refuses a request whose signature does not verify, or that does not parse', async () => {
    const issuer = createDeviceCertificateIssuer(material);
    const tampered = Buffer.from(request.der);
    tampered[tampered.length - 10] = (tampered[tampered.length - 10] as number) ^ 0xff;
    await assert.rejects(
      issuer.issueDeviceCertificate(tampered, { dnsName: 'a', uuid: 'u' }),
      (e) => isScsError(e, 'SCS_CERT_REQUEST_INVALID') && /does not verify/.test(e.message),
    );
    await assert.rejects(issuer.issueDeviceCertificate(Buffer.from('not der'), { dnsName: 'a', uuid: 'u' }), (e) =>
      isScsError(e, 'SCS_CERT_REQUEST_INVALID'),
    );
  });
});
