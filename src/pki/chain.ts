import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { ScsError } from '../errors.ts';

/**
 * What makes a certificate chain usable for AMT remote configuration (Intel AMT SDK, "Remote
 * configuration: certificate-based"; DMT rpc-go `activate`): a leaf made for provisioning, a
 * chain that ends in a self-signed root whose hash the firmware lists, a leaf CN inside the
 * device's DNS domain, all of it in its validity period, and an RSA key that belongs to the leaf.
 */

/** Intel's provisioning-certificate purpose (EKU 2.16.840.1.113741.1.2.3). */
export const AMT_PROVISIONING_EKU = '2.16.840.1.113741.1.2.3';
/** The older way to mark a provisioning certificate: an OU with exactly this text. */
export const AMT_PROVISIONING_OU = 'Intel(R) Client Setup Certificate';

export interface ProvisioningChain {
  /** Leaf first, root last (the order AddNextCertInChain takes them). */
  readonly certificates: readonly X509Certificate[];
  readonly key: KeyObject;
  readonly leafCommonName: string;
  readonly rootSha256: string;
  readonly rootSha1: string;
  readonly rootSha384: string;
  /** Earliest notAfter of the chain: the chain is unusable from then on. */
  readonly notAfter: Date;
  readonly notBefore: Date;
}

function chainError(message: string): ScsError {
  return new ScsError('SCS_PKI_CHAIN_INVALID', message);
}

/** A distinguished-name attribute from node's multi-line subject text (`CN=a\nOU=b`). */
export function nameAttribute(subject: string, attr: string): string[] {
  return subject
    .split('\n')
    .filter((l) => l.startsWith(`${attr}=`))
    .map((l) => l.slice(attr.length + 1));
}

export function hashHex(der: Buffer, algorithm: 'sha1' | 'sha256' | 'sha384'): string {
  return createHash(algorithm).update(der).digest('hex');
}

/** The DNS rule both AMT and the server apply: the leaf CN is the domain itself or a name inside it. */
export function commonNameFits(commonName: string, domain: string): boolean {
  const cn = commonName.toLowerCase().replace(/\.$/, '');
  const d = domain.toLowerCase().replace(/\.$/, '');
  return d !== '' && (cn === d || cn.endsWith(`.${d}`));
}

export function isProvisioningLeaf(cert: X509Certificate): boolean {
  const eku = cert.keyUsage ?? [];
  return eku.includes(AMT_PROVISIONING_EKU) || nameAttribute(cert.subject, 'OU').includes(AMT_PROVISIONING_OU);
}

/**
 * Orders and checks a chain read from a PFX (or PEM). `now` decides expiry. Throws
 * SCS_PKI_CHAIN_INVALID (what is wrong and how to fix it) or SCS_PKI_CERT_EXPIRED.
 */
export function analyzeChain(certDers: readonly Buffer[], keyPkcs8: Buffer, now: Date = new Date()): ProvisioningChain {
  const certs = certDers.map((d) => new X509Certificate(d));
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyPkcs8, format: 'der', type: 'pkcs8' });
  } catch (cause) {
    throw new ScsError('SCS_PKI_FILE_INVALID', 'the private key does not parse as PKCS#8', { cause });
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw chainError(`the key is ${key.asymmetricKeyType ?? 'unknown'}; AMT remote configuration signs with RSA only`);
  }
  const leaf = certs.find((c) => c.checkPrivateKey(key));
  if (leaf === undefined) throw chainError('no certificate in the file belongs to its private key');
  const ordered = [leaf];
  for (let cur = leaf; !cur.checkIssued(cur);) {
    const issuer = certs.find((c) => c !== cur && cur.checkIssued(c) && cur.verify(c.publicKey));
    if (issuer === undefined) {
      throw chainError(
        `the chain stops at "${cur.issuer.replace(/\n/g, ', ')}": the file must hold every certificate up to the self-signed root, because AMT matches the root's hash`,
      );
    }
    if (ordered.includes(issuer)) throw chainError('the certificates issue each other in a loop');
    ordered.push(issuer);
    cur = issuer;
  }
  const root = ordered[ordered.length - 1] as X509Certificate;
  if (!root.verify(root.publicKey)) throw chainError('the root certificate signature does not verify');
  if (!isProvisioningLeaf(leaf)) {
    throw chainError(
      `the leaf certificate is not a provisioning certificate: it needs extended key usage ${AMT_PROVISIONING_EKU} or OU "${AMT_PROVISIONING_OU}" (ask the CA for an "Intel AMT provisioning" certificate)`,
    );
  }
  const cn = nameAttribute(leaf.subject, 'CN')[0];
  if (cn === undefined || cn === '')
    throw chainError('the leaf certificate has no CN; AMT matches its domain to the device');
  const notAfter = new Date(Math.min(...ordered.map((c) => new Date(c.validTo).getTime())));
  const notBefore = new Date(Math.max(...ordered.map((c) => new Date(c.validFrom).getTime())));
  if (notAfter.getTime() <= now.getTime()) {
    throw new ScsError(
      'SCS_PKI_CERT_EXPIRED',
      `the provisioning chain expired on ${notAfter.toISOString()}: renew the certificate with the CA and import the new file`,
      { details: { notAfter: notAfter.toISOString() } },
    );
  }
  return {
    certificates: ordered,
    key,
    leafCommonName: cn,
    rootSha256: hashHex(root.raw, 'sha256'),
    rootSha1: hashHex(root.raw, 'sha1'),
    rootSha384: hashHex(root.raw, 'sha384'),
    notAfter,
    notBefore,
  };
}

/** Every certificate of a PEM text, as DER. */
export function pemCertificates(text: string): Buffer[] {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/g)].map((m) =>
    Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64'),
  );
}
