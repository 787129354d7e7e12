import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { ScsError } from '../errors.ts';
import { Secret } from '../secret.ts';

x509.cryptoProvider.set(webcrypto);

/**
 * The SCS's own certificate authority: it signs a TLS server certificate for each device's
 * own key pair (protocol.md §6 step 6: the device key never leaves the device; the SCS signs
 * the PKCS#10 request the device makes). RSA 2048 / SHA-256, because AMT 2.x–10.x firmware
 * parses RSA chains and SHA-256 is the newest hash those versions accept.
 */
const ALG: webcrypto.RsaHashedImportParams & webcrypto.RsaHashedKeyGenParams = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
};

export interface CaMaterial {
  /** PEM of the self-signed CA certificate: public, given to clients that verify devices. */
  readonly certPem: string;
  /** PKCS#8 DER of the CA private key; stored only sealed by the store's SecretBox. */
  readonly keyPkcs8: Secret<Buffer>;
}

export interface Ca {
  readonly certPem: string;
  readonly cert: x509.X509Certificate;
  issueDeviceCertificate(csrDer: Buffer, names: DeviceNames): Promise<IssuedCertificate>;
}

export interface DeviceNames {
  /** FQDN (host.domain) or host name the device answers to; becomes CN and DNS SAN. */
  readonly dnsName: string;
  /** Device UUID text (protocol.md §1c), recorded as the O unit so a certificate names its device. */
  readonly uuid: string;
  readonly validityDays?: number;
}

export interface IssuedCertificate {
  readonly der: Buffer;
  readonly pem: string;
  readonly serialNumber: string;
  readonly notAfter: Date;
  readonly sha256Fingerprint: string;
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f; // positive INTEGER (RFC 5280 §4.1.2.2)
  return b.toString('hex');
}

export async function createCaMaterial(commonName = 'amt-scs device CA'): Promise<CaMaterial> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const now = new Date();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}, O=amt-scs`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + 20 * 365 * 86_400_000),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { certPem: cert.toString('pem'), keyPkcs8: new Secret(pkcs8) };
}

export async function loadCa(material: CaMaterial): Promise<Ca> {
  const cert = new x509.X509Certificate(material.certPem);
  const signingKey = await webcrypto.subtle.importKey('pkcs8', material.keyPkcs8.reveal(), ALG, false, ['sign']);
  const authorityKeyId = await x509.AuthorityKeyIdentifierExtension.create(cert);

  return {
    certPem: material.certPem,
    cert,
    async issueDeviceCertificate(csrDer, names) {
      let csr: x509.Pkcs10CertificateRequest;
      try {
        csr = new x509.Pkcs10CertificateRequest(csrDer);
      } catch (cause) {
        throw new ScsError('SCS_CERT_REQUEST_INVALID', 'the device returned a PKCS#10 request that does not parse', {
          cause,
        });
      }
      if (!(await csr.verify())) {
        throw new ScsError(
          'SCS_CERT_REQUEST_INVALID',
          'the PKCS#10 request signature does not verify with its own key',
        );
      }
      const now = new Date();
      const notAfter = new Date(now.getTime() + (names.validityDays ?? 825) * 86_400_000);
      const publicKey = await csr.publicKey.export();
      const issued = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: `CN=${names.dnsName}, OU=${names.uuid}, O=amt-scs`,
        issuer: cert.subject,
        notBefore: new Date(now.getTime() - 60_000),
        notAfter,
        signingAlgorithm: ALG,
        publicKey,
        signingKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: names.dnsName }]),
          authorityKeyId,
          await x509.SubjectKeyIdentifierExtension.create(publicKey),
        ],
      });
      const der = Buffer.from(issued.rawData);
      const thumb = Buffer.from(await issued.getThumbprint('SHA-256')).toString('hex');
      return {
        der,
        pem: issued.toString('pem'),
        serialNumber: issued.serialNumber,
        notAfter,
        sha256Fingerprint: thumb,
      };
    },
  };
}
