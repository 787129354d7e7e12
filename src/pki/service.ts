import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { ScsError } from '../errors.ts';
import type { CertHash } from '../hello/decode.ts';
import { Secret } from '../secret.ts';
import type { PkiCertRow } from '../store/pki/pki.ts';
import type { Store } from '../store/store.ts';
import { analyzeChain, commonNameFits, hashHex, pemCertificates } from './chain.ts';
import { readPkcs12 } from './pkcs12.ts';

/**
 * Provisioning certificates (docs/pki.md): import (PKCS#12, or a PEM file with the chain and
 * the key), list, and the match of a version 3 hello's hash list against the stored roots.
 */

const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export function parseDnsSuffix(text: string): string {
  const s = text.trim().toLowerCase().replace(/\.$/, '');
  if (!DNS_NAME.test(s)) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `--dns-suffix "${text}" is not a DNS name (e.g. example.com)`);
  }
  return s;
}

export interface ImportInput {
  /** PKCS#12 bytes, or PEM text holding CERTIFICATE blocks and one PRIVATE KEY block. */
  readonly file: Buffer;
  /** PKCS#12 only; PEM keys must be unencrypted PKCS#8 or PKCS#1. */
  readonly passphrase: Secret<string> | undefined;
  readonly dnsSuffix: string;
  readonly actor: string;
  readonly now?: Date;
}

function isPem(file: Buffer): boolean {
  return file.subarray(0, 4096).toString('latin1').includes('-----BEGIN ');
}

function pemKey(text: string): Buffer {
  const m = /-----BEGIN (RSA |)PRIVATE KEY-----[^-]+-----END \1PRIVATE KEY-----/.exec(text);
  if (m === null) {
    if (text.includes('ENCRYPTED PRIVATE KEY')) {
      throw new ScsError(
        'SCS_PKI_FILE_INVALID',
        'the PEM key is encrypted: give a PKCS#12 file with --passphrase-env instead',
      );
    }
    throw new ScsError('SCS_PKI_FILE_INVALID', 'the PEM file holds no PRIVATE KEY block');
  }
  try {
    return createPrivateKey(m[0]).export({ type: 'pkcs8', format: 'der' });
  } catch (cause) {
    throw new ScsError('SCS_PKI_FILE_INVALID', 'the PEM private key does not parse', { cause });
  }
}

/** Checks a chain and stores it; the same leaf twice is SCS_PKI_CONFLICT. */
export async function importProvisioningCertificate(store: Store, input: ImportInput): Promise<PkiCertRow> {
  let certs: Buffer[];
  let keyPkcs8: Buffer;
  if (isPem(input.file)) {
    const text = input.file.toString('utf8');
    certs = pemCertificates(text);
    keyPkcs8 = pemKey(text);
    if (certs.length === 0) throw new ScsError('SCS_PKI_FILE_INVALID', 'the PEM file holds no CERTIFICATE block');
  } else {
    if (input.passphrase === undefined) {
      throw new ScsError('SCS_PASSPHRASE_MISSING', 'a PKCS#12 file needs its passphrase (--passphrase-env VAR)');
    }
    ({ certificates: certs, keyPkcs8 } = readPkcs12(input.file, input.passphrase));
  }
  return storeChain(store, { certificates: certs, keyPkcs8: new Secret(keyPkcs8) }, input);
}

/** Stores an already-read chain (the demo's generated one goes through here too). */
export async function storeChain(
  store: Store,
  material: { readonly certificates: readonly Buffer[]; readonly keyPkcs8: Secret<Buffer> },
  input: { readonly dnsSuffix: string; readonly actor: string; readonly now?: Date },
): Promise<PkiCertRow> {
  const suffix = parseDnsSuffix(input.dnsSuffix);
  const chain = analyzeChain(material.certificates, material.keyPkcs8.reveal(), input.now);
  if (!commonNameFits(chain.leafCommonName, suffix)) {
    throw new ScsError(
      'SCS_PKI_DNS_SUFFIX_MISMATCH',
      `the certificate is for "${chain.leafCommonName}", which is not inside "${suffix}": AMT accepts it only from devices whose DNS suffix contains the CN; give the suffix the CN belongs to`,
      { details: { cn: chain.leafCommonName, dnsSuffix: suffix } },
    );
  }
  return store.pki.add(
    {
      dnsSuffix: suffix,
      leafCommonName: chain.leafCommonName,
      leafSha256: hashHex((chain.certificates[0] as X509Certificate).raw, 'sha256'),
      rootSha256: chain.rootSha256,
      rootSha1: chain.rootSha1,
      rootSha384: chain.rootSha384,
      notBefore: chain.notBefore,
      notAfter: chain.notAfter,
      chainPem: chain.certificates.map((c) => c.toString()).join(''),
      keyPkcs8: new Secret(chain.key.export({ type: 'pkcs8', format: 'der' })),
    },
    { actor: input.actor },
  );
}

export function rootHashFor(row: PkiCertRow, algorithm: CertHash['algorithm']): string {
  return algorithm === 'sha1' ? row.rootSha1 : algorithm === 'sha256' ? row.rootSha256 : row.rootSha384;
}

/** Which stored certificates have a root the device trusts. */
export function matchingCertificates(rows: readonly PkiCertRow[], hashes: readonly CertHash[]): PkiCertRow[] {
  return rows.filter((r) => hashes.some((h) => rootHashFor(r, h.algorithm) === h.hash.toLowerCase()));
}

/**
 * Picks the certificate for a version 3 hello, or says exactly what the operator must fix:
 * SCS_PKI_NO_MATCHING_ROOT (import a certificate from a CA the device trusts, or add its root
 * hash in MEBx), SCS_PKI_CERT_EXPIRED (renew), SCS_PKI_DNS_SUFFIX_MISMATCH (the device's domain,
 * when known, is not one the certificate is for).
 */
export function chooseCertificate(
  rows: readonly PkiCertRow[],
  hashes: readonly CertHash[],
  options: { readonly now: Date; readonly deviceDomain?: string | undefined },
): PkiCertRow {
  const matching = matchingCertificates(rows, hashes);
  if (matching.length === 0) {
    throw new ScsError(
      'SCS_PKI_NO_MATCHING_ROOT',
      rows.length === 0
        ? 'no provisioning certificate is imported: import one (`amt-scs pki import`) from a CA whose root the devices trust'
        : `none of the ${rows.length} stored provisioning certificates has a root among the ${hashes.length} hashes the device trusts: import one from a CA in the device's list, or add the root's hash to the device (MEBx > Remote Setup and Configuration > TLS PKI > Manage Hashes)`,
      { details: { stored: rows.length, deviceHashes: hashes.length } },
    );
  }
  const current = matching.filter((r) => r.notAfter > options.now && r.notBefore <= options.now);
  if (current.length === 0) {
    const latest = matching.reduce((a, b) => (a.notAfter > b.notAfter ? a : b));
    throw new ScsError(
      'SCS_PKI_CERT_EXPIRED',
      `the provisioning certificate for this device's root (id ${latest.id}, ${latest.leafCommonName}) is outside its validity (not after ${latest.notAfter.toISOString()}): renew it with the CA and import the new file`,
      { details: { id: latest.id, notAfter: latest.notAfter.toISOString() } },
    );
  }
  const domain = options.deviceDomain?.toLowerCase().replace(/\.$/, '');
  if (domain === undefined || domain === '') {
    return current.reduce((a, b) => (a.notAfter > b.notAfter ? a : b));
  }
  const fitting = current.filter((r) => commonNameFits(r.leafCommonName, domain));
  if (fitting.length === 0) {
    throw new ScsError(
      'SCS_PKI_DNS_SUFFIX_MISMATCH',
      `the device's DNS suffix is "${domain}" but the provisioning certificates for its root are for ${current.map((r) => `"${r.dnsSuffix}" (CN ${r.leafCommonName})`).join(', ')}: set the device's PKI DNS suffix in MEBx (or DHCP option 15) to the certificate's domain, or import a certificate for "${domain}"`,
      { details: { deviceDomain: domain, certificates: current.length } },
    );
  }
  return fitting.reduce((a, b) => (a.notAfter > b.notAfter ? a : b));
}

export interface ProvisioningSigner {
  readonly row: PkiCertRow;
  /** Leaf first, root last. */
  readonly chainDer: readonly Buffer[];
  readonly chainPem: string;
  readonly key: KeyObject;
}

export async function openSigner(
  store: Store,
  row: PkiCertRow,
  context: { actor: string; purpose: string },
): Promise<ProvisioningSigner> {
  const key = await store.pki.openKey(row.id, context);
  return {
    row,
    chainDer: pemCertificates(row.chainPem),
    chainPem: row.chainPem,
    key: createPrivateKey({ key: key.reveal(), format: 'der', type: 'pkcs8' }),
  };
}
