import type { Migration } from '../sql/migrate.ts';

/**
 * Schema version 5: provisioning certificates for AMT remote configuration (docs/pki.md). The
 * chain is public; the private key is sealed by the store's SecretBox. The leaf is unique: the
 * same file imported twice is a conflict, not a second row. Root hashes are indexed because a
 * version 3 hello is matched by them.
 */
export const PKI_MIGRATION: Migration = {
  version: 5,
  name: 'pki: provisioning certificates',
  statements: [
    `create table pki_certs (
      id integer primary key,
      dns_suffix text not null,
      leaf_cn text not null,
      leaf_sha256 text not null unique check (length(leaf_sha256) = 64),
      root_sha256 text not null check (length(root_sha256) = 64),
      root_sha1 text not null check (length(root_sha1) = 40),
      root_sha384 text not null check (length(root_sha384) = 96),
      not_before text not null,
      not_after text not null,
      chain_pem text not null,
      key blob not null,
      created_at text not null,
      created_by text not null
    )`,
    `create index pki_certs_root on pki_certs (root_sha256)`,
  ],
};
