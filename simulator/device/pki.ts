import { createHash, randomBytes, verify, webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * What a device in PKI setup mode (AMT 7+ remote configuration) knows and checks, written from
 * Intel's AMT SDK description, independently of src/pki: the trusted root certificate hashes
 * (Intel's defaults plus any a technician added in MEBx), the DNS suffix the provisioning
 * certificate's CN must fall in (set in MEBx, else DHCP option 15), the chain a client presents
 * (mutual TLS) or adds (AddNextCertInChain), and the AdminSetup signature.
 */
x509.cryptoProvider.set(webcrypto);

/** §1b hash algorithm ids. */
export type HashAlgorithmId = 1 | 2 | 3;
const HASH_NAMES: Readonly<Record<HashAlgorithmId, 'sha1' | 'sha256' | 'sha384'>> = {
  1: 'sha1',
  2: 'sha256',
  3: 'sha384',
};

export interface TrustedHash {
  readonly algorithm: HashAlgorithmId;
  readonly hash: Buffer;
  readonly name: string;
  /** Shipped with the firmware (true) or added in MEBx (false). */
  readonly isDefault: boolean;
}

/**
 * SHA-1 root hashes AMT 7.0-10.x firmware ships with (Intel AMT Implementation and Reference
 * Guide, "Root Certificate Hashes"). They never match a test chain: they are here so a device's
 * hello carries a realistic list that the server must search.
 */
export const DEFAULT_ROOT_HASHES: readonly TrustedHash[] = [
  ['VeriSign Class 3 Public Primary CA - G1', '742c3192e607e424eb4549542be1bbc53e6174e2'],
  ['VeriSign Class 3 Public Primary CA - G1.5', 'a1db6393916f17e4185509400415c70240b0ae6b'],
  ['VeriSign Class 3 Public Primary CA - G2', '85371ca6e550143dce2803471bde3a09e8f8770f'],
  ['VeriSign Class 3 Public Primary CA - G3', '132d0d45534b6997cdb2d5c339e25576609b5cc6'],
  ['VeriSign Class 3 Public Primary CA - G5', '4eb6d578499b1ccf5f581ead56be3d9b6744a5e5'],
  ['Go Daddy Class 2 CA', '2796bae63f1801e277261ba0d77770028f20eee4'],
  ['Comodo AAA CA', 'd1eb23a46d17d68fd92564c2f1f1601764d8e349'],
  ['Starfield Class 2 CA', 'ad7e1c28b064ef8f6003402014c3d0e3370eb58a'],
].map(([name, hex]) => ({
  algorithm: 1 as const,
  hash: Buffer.from(hex as string, 'hex'),
  name: name as string,
  isDefault: true,
}));

/** A user-added hash (MEBx "Add custom hash"): SHA-256 of the root's DER, 64 hex digits. */
export function userHash(hex: string, name = 'user-added'): TrustedHash {
  return { algorithm: 2, hash: Buffer.from(hex, 'hex'), name, isDefault: false };
}

export function isTrustedRoot(rootDer: Buffer, hashes: readonly TrustedHash[]): boolean {
  return hashes.some((h) => createHash(HASH_NAMES[h.algorithm]).update(rootDer).digest().equals(h.hash));
}

/** Intel's provisioning-certificate EKU, or the OU older certificates carry instead. */
const PROVISIONING_EKU = '2.16.840.1.113741.1.2.3';
const PROVISIONING_OU = 'Intel(R) Client Setup Certificate';

export type ChainVerdict =
  | { ok: true; leaf: X509Certificate }
  | {
      ok: false;
      reason:
        'chain-broken' | 'root-not-trusted' | 'not-provisioning-cert' | 'dns-suffix' | 'expired' | 'no-dns-suffix';
    };

/** `ders`: leaf first, root last (the TLS Certificate message order and AddNextCertInChain order). */
export function checkProvisioningChain(
  ders: readonly Buffer[],
  hashes: readonly TrustedHash[],
  dnsSuffix: string,
  now: number,
): ChainVerdict {
  let certs: X509Certificate[];
  try {
    certs = ders.map((d) => new X509Certificate(d));
  } catch {
    return { ok: false, reason: 'chain-broken' };
  }
  const leaf = certs[0];
  const root = certs[certs.length - 1];
  if (leaf === undefined || root === undefined) return { ok: false, reason: 'chain-broken' };
  for (let i = 0; i < certs.length; i++) {
    const c = certs[i] as X509Certificate;
    const issuer = certs[i + 1] ?? c;
    if (!c.checkIssued(issuer) || !c.verify(issuer.publicKey)) return { ok: false, reason: 'chain-broken' };
  }
  if (!root.checkIssued(root)) return { ok: false, reason: 'chain-broken' };
  if (!isTrustedRoot(root.raw, hashes)) return { ok: false, reason: 'root-not-trusted' };
  if (certs.some((c) => Date.parse(c.validTo) <= now || Date.parse(c.validFrom) > now))
    return { ok: false, reason: 'expired' };
  const ous = leaf.subject
    .split('\n')
    .filter((l) => l.startsWith('OU='))
    .map((l) => l.slice(3));
  if (!(leaf.keyUsage ?? []).includes(PROVISIONING_EKU) && !ous.includes(PROVISIONING_OU)) {
    return { ok: false, reason: 'not-provisioning-cert' };
  }
  if (dnsSuffix === '') return { ok: false, reason: 'no-dns-suffix' };
  const cn = (leaf.subject.split('\n').find((l) => l.startsWith('CN=')) ?? '').slice(3).toLowerCase();
  const d = dnsSuffix.toLowerCase();
  if (cn !== d && !cn.endsWith(`.${d}`)) return { ok: false, reason: 'dns-suffix' };
  return { ok: true, leaf };
}

/** AdminSetup: DigitalSignature = RSA PKCS#1 v1.5 over ConfigurationNonce || McNonce (SigningAlgorithm 2 = SHA-256, 1 = SHA-1). */
export function verifyAdminSetupSignature(
  leaf: X509Certificate,
  configurationNonce: Buffer,
  mcNonce: Buffer,
  signingAlgorithm: number,
  signature: Buffer,
): boolean {
  const hash = signingAlgorithm === 2 ? 'sha256' : signingAlgorithm === 1 ? 'sha1' : undefined;
  if (hash === undefined) return false;
  try {
    return verify(hash, Buffer.concat([configurationNonce, mcNonce]), leaf.publicKey, signature);
  } catch {
    return false;
  }
}

export function newConfigurationNonce(): Buffer {
  return randomBytes(20);
}

/** The self-signed certificate a device in setup mode presents on 16993 (no SCS CA has signed anything yet). */
export async function makeSetupIdentity(uuid: string): Promise<{ keyPem: string; certPem: string }> {
  const alg = {
    name: 'RSASSA-PKCS1-v1_5',
    hash: 'SHA-256',
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
  };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8)
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    name: `CN=iAMT-${uuid.slice(0, 8)}, O=Intel(R) AMT setup`,
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 20 * 365 * 86_400_000),
    keys,
    signingAlgorithm: alg,
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return {
    keyPem: `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`,
    certPem: cert.toString('pem'),
  };
}
