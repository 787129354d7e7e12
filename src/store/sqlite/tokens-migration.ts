import { API_ROLES } from '../tokens/tokens.ts';
import type { Migration } from '../sql/migrate.ts';

const list = (values: readonly string[]): string => values.map((v) => `'${v}'`).join(', ');

/**
 * Schema version 3: REST API tokens (docs/api.md, "Access control"). Only the SHA-256 of a
 * token is kept. A name is unique among active tokens (partial unique index, as PostgreSQL has
 * too), so a revoked name can be reused while its history stays in the table and the audit log.
 */
export const TOKENS_MIGRATION: Migration = {
  version: 3,
  name: 'api tokens',
  statements: [
    `create table api_tokens (
      id integer primary key,
      name text not null,
      role text not null check (role in (${list(API_ROLES)})),
      grants text not null,
      hash text not null unique check (length(hash) = 64),
      created_at text not null,
      created_by text not null,
      last_used_at text,
      revoked_at text
    )`,
    `create unique index api_tokens_active_name on api_tokens (name) where revoked_at is null`,
  ],
};
