import { createPublicKey } from 'node:crypto';

/**
 * The "null-signed" PKCS#10 request (RFC 2986) GeneratePKCS10RequestEx takes (protocol.md §6
 * step 6): the device's public key and the subject we want, with an all-zero signature. The
 * device keeps the CertificationRequestInfo and signs it with its own key, which never leaves
 * it. Built by hand: no throwaway RSA key per device (generating one costs 50-200 ms).
 */

function der(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let head: Buffer;
  if (n < 0x80) head = Buffer.from([tag, n]);
  else if (n < 0x100) head = Buffer.from([tag, 0x81, n]);
  else if (n < 0x10000) head = Buffer.from([tag, 0x82, n >> 8, n & 0xff]);
  else head = Buffer.from([tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([head, content]);
}

const sequence = (...parts: Buffer[]): Buffer => der(0x30, Buffer.concat(parts));
const VERSION_0 = Buffer.from([0x02, 0x01, 0x00]);
/** attributes [0] IMPLICIT SET OF Attribute, empty. */
const NO_ATTRIBUTES = Buffer.from([0xa0, 0x00]);
/** 2.5.4.3 id-at-commonName. */
const OID_COMMON_NAME = Buffer.from('0603550403', 'hex');
/** AlgorithmIdentifier { 1.2.840.113549.1.1.11 sha256WithRSAEncryption, NULL }. */
const SHA256_WITH_RSA = sequence(Buffer.from('06092a864886f70d01010b', 'hex'), Buffer.from('0500', 'hex'));

/**
 * `derKeyBase64`: AMT_PublicPrivateKeyPair.DERKey, a PKCS#1 RSAPublicKey. Returns base64 DER
 * of CertificationRequest { info { 0, CN=<commonName>, SubjectPublicKeyInfo, [0] {} },
 * sha256WithRSAEncryption, BIT STRING of 256 zero bytes }.
 */
export function nullSignedCertificateRequest(derKeyBase64: string, commonName: string): string {
  const spki = createPublicKey({ key: Buffer.from(derKeyBase64, 'base64'), format: 'der', type: 'pkcs1' }).export({
    type: 'spki',
    format: 'der',
  });
  const subject = sequence(der(0x31, sequence(OID_COMMON_NAME, der(0x0c, Buffer.from(commonName, 'utf8')))));
  const info = sequence(VERSION_0, subject, spki, NO_ATTRIBUTES);
  const signature = der(0x03, Buffer.alloc(257)); // leading 0: no unused bits
  return sequence(info, SHA256_WITH_RSA, signature).toString('base64');
}
