import type { Secret } from '../../secret.ts';

/**
 * Provisioning certificates for AMT remote configuration (docs/pki.md): the chain in clear
 * (public), the private key sealed with the store's SecretBox (AAD `pki:key:<leaf SHA-256>`),
 * the root hashes devices are matched by, and the DNS suffix the certificate is valid for.
 */
export type PkiCertsTable = {
  id: number;
  dns_suffix: string;
  leaf_cn: string;
  leaf_sha256: string;
  root_sha256: string;
  root_sha1: string;
  root_sha384: string;
  not_before: string;
  not_after: string;
  /** PEM of the chain, leaf first, root last. */
  chain_pem: string;
  key: Buffer;
  created_at: string;
  created_by: string;
};

export type PkiDb = { pki_certs: PkiCertsTable };

export interface NewPkiCert {
  readonly dnsSuffix: string;
  readonly leafCommonName: string;
  readonly leafSha256: string;
  readonly rootSha256: string;
  readonly rootSha1: string;
  readonly rootSha384: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly chainPem: string;
  /** PKCS#8 DER. */
  readonly keyPkcs8: Secret<Buffer>;
}

export interface PkiCertRow {
  readonly id: number;
  readonly dnsSuffix: string;
  readonly leafCommonName: string;
  readonly leafSha256: string;
  readonly rootSha256: string;
  readonly rootSha1: string;
  readonly rootSha384: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly chainPem: string;
  readonly createdAt: Date;
  readonly createdBy: string;
}

export interface PkiRepository {
  /** Stores a checked chain; the same leaf twice is SCS_PKI_CONFLICT. Audited `pki.import`. */
  add(cert: NewPkiCert, context: { readonly actor: string }): Promise<PkiCertRow>;
  list(): Promise<PkiCertRow[]>;
  get(id: number): Promise<PkiCertRow | undefined>;
  /** The private key; audited `pki.key_use` with the purpose (e.g. the device it signs for). */
  openKey(id: number, context: { readonly actor: string; readonly purpose: string }): Promise<Secret<Buffer>>;
  /** Deletes the row (key included). Audited `pki.remove`. */
  remove(id: number, context: { readonly actor: string }): Promise<void>;
}
