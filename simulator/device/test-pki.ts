import { createPublicKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * Test support (not a test): a tiny CA built with @peculiar/x509, the "null-signed" PKCS#10 an
 * SCS sends to GeneratePKCS10RequestEx, and certificate issuance from the device-signed request.
 */
x509.cryptoProvider.set(webcrypto);

const ALG = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
} as const;

export interface TestCa {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  pem: string;
}

export async function makeCa(name = 'CN=amt-scs test CA'): Promise<TestCa> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys,
    signingAlgorithm: ALG,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  return { cert, keys, pem: cert.toString('pem') };
}

/**
 * A PKCS#10 request carrying the device's public key (from AMT_PublicPrivateKeyPair.DERKey, a
 * PKCS#1 RSAPublicKey) whose signature is made with some other key: "null-signed", as far as the
 * device is concerned. Returns base64 DER.
 */
export async function nullSignedCsr(
  derKeyBase64: string,
  signer: CryptoKey,
  subject = 'CN=amt-device',
): Promise<string> {
  const spki = createPublicKey({ key: Buffer.from(derKeyBase64, 'base64'), format: 'der', type: 'pkcs1' }).export({
    type: 'spki',
    format: 'der',
  });
  const publicKey = await webcrypto.subtle.importKey('spki', spki, { name: ALG.name, hash: ALG.hash }, true, [
    'verify',
  ]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subject,
    keys: { publicKey, privateKey: signer },
    signingAlgorithm: ALG,
  });
  return Buffer.from(csr.rawData).toString('base64');
}

/** Verifies the device-signed request and issues a certificate for its key. Returns base64 DER. */
export async function issueFromCsr(ca: TestCa, signedCsrBase64: string, serial = '02'): Promise<string> {
  const req = new x509.Pkcs10CertificateRequest(Buffer.from(signedCsrBase64, 'base64'));
  if (!(await req.verify())) throw new Error('the signed request does not verify');
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: req.subject,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    publicKey: req.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALG,
  });
  return Buffer.from(cert.rawData).toString('base64');
}

export async function verifyCsr(signedCsrBase64: string): Promise<boolean> {
  return new x509.Pkcs10CertificateRequest(Buffer.from(signedCsrBase64, 'base64')).verify();
}

export function csrSignatureAlgorithm(signedCsrBase64: string): string {
  const req = new x509.Pkcs10CertificateRequest(Buffer.from(signedCsrBase64, 'base64'));
  return (req.signatureAlgorithm as { hash?: { name?: string } }).hash?.name ?? '';
}
