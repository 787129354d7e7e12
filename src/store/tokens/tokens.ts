import type { Generated } from 'kysely';

/**
 * API tokens as the store keeps them (docs/api.md, "Access control"). The store never sees a
 * token itself: callers hash it (src/api/tokens.ts) and hand over the SHA-256 hex digest, so a
 * copy of the database yields no usable token.
 */

/** Roles, strongest first. What each may do is decided in src/api/access.ts. */
export const API_ROLES = ['admin', 'operator', 'auditor', 'viewer'] as const;
export type ApiRole = (typeof API_ROLES)[number];

/** Extra rights a token may carry beyond its role. `reveal`: read PPS / admin passwords. */
export const API_GRANTS = ['reveal'] as const;
export type ApiGrant = (typeof API_GRANTS)[number];

export function isApiRole(value: unknown): value is ApiRole {
  return typeof value === 'string' && (API_ROLES as readonly string[]).includes(value);
}

export function isApiGrant(value: unknown): value is ApiGrant {
  return typeof value === 'string' && (API_GRANTS as readonly string[]).includes(value);
}

export interface ApiTokenRow {
  readonly id: number;
  readonly name: string;
  readonly role: ApiRole;
  readonly grants: readonly ApiGrant[];
  readonly createdAt: Date;
  /** Actor that created it (`cli:<user>`, `api:<token name>`, `bootstrap`). */
  readonly createdBy: string;
  /** Updated at most about once a minute (src/api/tokens.ts), not on every request. */
  readonly lastUsedAt: Date | null;
  readonly revokedAt: Date | null;
}

export interface NewApiToken {
  readonly name: string;
  readonly role: ApiRole;
  readonly grants: readonly ApiGrant[];
  /** Lowercase hex SHA-256 of the whole token text. */
  readonly hash: string;
}

export interface TokenContext {
  readonly actor: string;
  readonly reason?: string;
}

export interface TokenRepository {
  /**
   * Stores a token and audits `token.create` (name, role, grants; never the token or its
   * hash) in the same transaction. SCS_TOKEN_NAME_TAKEN if an active token has the name.
   */
  create(token: NewApiToken, context: TokenContext): Promise<ApiTokenRow>;
  /** The active (not revoked) token with this hash, with the stored hash for a constant-time check. */
  findActiveByHash(hash: string): Promise<(ApiTokenRow & { readonly hash: string }) | undefined>;
  /** Tokens by creation order; revoked ones only when asked. */
  list(options?: { readonly includeRevoked?: boolean }): Promise<ApiTokenRow[]>;
  /** Revokes the active token with this name, audited as `token.revoke`. SCS_TOKEN_NOT_FOUND if none. */
  revoke(name: string, context: TokenContext): Promise<ApiTokenRow>;
  /** Records use (not audited: reads are not audit events). */
  markUsed(id: number, at: Date): Promise<void>;
  countActive(): Promise<number>;
}

/** The `api_tokens` table as the shared SQL code sees it. */
export interface ApiTokensTable {
  id: Generated<number>;
  name: string;
  role: ApiRole;
  /** Grants joined by commas ('' = none). */
  grants: string;
  hash: string;
  created_at: string;
  created_by: string;
  last_used_at: string | null;
  revoked_at: string | null;
}
