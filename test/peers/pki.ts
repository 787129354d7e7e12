import { createPublicKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * The SCS's side of protocol.md §6 step 6, for the peer tests: a throw-away CA, the "null-signed"
 * PKCS#10 an SCS hands to GeneratePKCS10RequestEx (RFC 2986 structure with the device's public
 * key and an all-zero signature: the device re-signs it), and a certificate for the request the
 * device signed. The DER is written here by hand so it shares nothing with the simulator.
 */
x509.cryptoProvider.set(webcrypto);

const RSA = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
};

export interface PeerCa {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  pem: string;
}

export async function makePeerCa(): Promise<PeerCa> {
  const keys = await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '0a',
    name: 'CN=amt-scs peer-test CA',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys,
    signingAlgorithm: RSA,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  return { cert, keys, pem: cert.toString('pem') };
}

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const len =
    n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));
// 2.5.4.3 commonName; 1.2.840.113549.1.1.11 sha256WithRSAEncryption
const OID_CN = Buffer.from('0603550403', 'hex');
const SHA256_RSA = seq(Buffer.from('06092a864886f70d01010b', 'hex'), Buffer.from('0500', 'hex'));

/**
 * CertificationRequest { info { version 0, subject CN=<cn>, SPKI of the device key, attributes [0] {} },
 * sha256WithRSAEncryption, 256 zero bytes }. `derKeyBase64` is AMT_PublicPrivateKeyPair.DERKey
 * (PKCS#1 RSAPublicKey). Returns base64 DER.
 */
export function nullSignedRequest(derKeyBase64: string, cn = 'amt-device'): string {
  const spki = createPublicKey({ key: Buffer.from(derKeyBase64, 'base64'), format: 'der', type: 'pkcs1' }).export({
    type: 'spki',
    format: 'der',
  });
  const subject = seq(tlv(0x31, seq(OID_CN, tlv(0x0c, Buffer.from(cn, 'utf8')))));
  const info = seq(Buffer.from('020100', 'hex'), subject, spki, Buffer.from('a000', 'hex'));
  const signature = tlv(0x03, Buffer.concat([Buffer.from([0]), Buffer.alloc(256)]));
  return seq(info, SHA256_RSA, signature).toString('base64');
}

/** Verifies the device's signature on its request, then issues a TLS server certificate for its key (base64 DER). */
export async function issueForRequest(ca: PeerCa, signedRequestBase64: string): Promise<string> {
  const csr = new x509.Pkcs10CertificateRequest(Buffer.from(signedRequestBase64, 'base64'));
  if (!(await csr.verify())) throw new Error('the device-signed PKCS#10 does not verify');
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '1b',
    subject: csr.subject,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    publicKey: csr.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: RSA,
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth])],
  });
  return Buffer.from(cert.rawData).toString('base64');
}
