import type { Selectable } from 'kysely';
import { ScsError } from '../../errors.ts';
import { appendAudit, guard, write, type SqlContext } from '../sql/sql-store.ts';
import {
  isApiGrant,
  type ApiTokenRow,
  type ApiTokensTable,
  type NewApiToken,
  type TokenContext,
  type TokenRepository,
} from './tokens.ts';

const HASH = /^[0-9a-f]{64}$/;

function toRow(r: Selectable<ApiTokensTable>): ApiTokenRow {
  return {
    id: Number(r.id),
    name: r.name,
    role: r.role,
    grants: r.grants === '' ? [] : r.grants.split(',').filter(isApiGrant),
    createdAt: new Date(r.created_at),
    createdBy: r.created_by,
    lastUsedAt: r.last_used_at === null ? null : new Date(r.last_used_at),
    revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at),
  };
}

const COLUMNS = [
  'id',
  'name',
  'role',
  'grants',
  'created_at',
  'created_by',
  'last_used_at',
  'revoked_at',
] as const satisfies readonly (keyof ApiTokensTable)[];

/** API tokens over the shared SQL core: same transactions and audit chain as the PSKs. */
export class SqlTokens implements TokenRepository {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async create(token: NewApiToken, context: TokenContext): Promise<ApiTokenRow> {
    if (!HASH.test(token.hash))
      throw new ScsError('SCS_ARGUMENT_INVALID', 'a token hash must be 64 lowercase hex digits');
    return write(this.#ctx, async (tx) => {
      // The partial unique index also enforces this; checking first gives a clear error code.
      const taken = await tx.q
        .selectFrom('api_tokens')
        .select('id')
        .where('name', '=', token.name)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (taken !== undefined) {
        throw new ScsError('SCS_TOKEN_NAME_TAKEN', `an active API token is already named "${token.name}"`, {
          details: { name: token.name },
        });
      }
      const now = new Date().toISOString();
      const row = await tx.q
        .insertInto('api_tokens')
        .values({
          name: token.name,
          role: token.role,
          grants: [...new Set(token.grants)].sort().join(','),
          hash: token.hash,
          created_at: now,
          created_by: context.actor,
          last_used_at: null,
          revoked_at: null,
        })
        .returning(COLUMNS)
        .executeTakeFirstOrThrow();
      const created = toRow({ ...row, hash: token.hash });
      await appendAudit(tx, [
        {
          actor: context.actor,
          action: 'token.create',
          detail: {
            name: created.name,
            role: created.role,
            grants: created.grants.join(','),
            ...(context.reason === undefined ? {} : { reason: context.reason }),
          },
        },
      ]);
      return created;
    });
  }

  async findActiveByHash(hash: string): Promise<(ApiTokenRow & { readonly hash: string }) | undefined> {
    if (!HASH.test(hash)) return undefined;
    const r = await guard(
      this.#ctx.q
        .selectFrom('api_tokens')
        .selectAll()
        .where('hash', '=', hash)
        .where('revoked_at', 'is', null)
        .executeTakeFirst(),
    );
    return r === undefined ? undefined : { ...toRow(r), hash: r.hash };
  }

  async list(options: { readonly includeRevoked?: boolean } = {}): Promise<ApiTokenRow[]> {
    let q = this.#ctx.q.selectFrom('api_tokens').select(COLUMNS);
    if (options.includeRevoked !== true) q = q.where('revoked_at', 'is', null);
    const rows = await guard(q.orderBy('id').execute());
    return rows.map((r) => toRow({ ...r, hash: '' }));
  }

  async revoke(name: string, context: TokenContext): Promise<ApiTokenRow> {
    return write(this.#ctx, async (tx) => {
      const now = new Date().toISOString();
      const row = await tx.q
        .updateTable('api_tokens')
        .set({ revoked_at: now })
        .where('name', '=', name)
        .where('revoked_at', 'is', null)
        .returning(COLUMNS)
        .executeTakeFirst();
      if (row === undefined) {
        throw new ScsError('SCS_TOKEN_NOT_FOUND', `no active API token is named "${name}"`, { details: { name } });
      }
      await appendAudit(tx, [
        {
          actor: context.actor,
          action: 'token.revoke',
          detail: { name, role: row.role, ...(context.reason === undefined ? {} : { reason: context.reason }) },
        },
      ]);
      return toRow({ ...row, hash: '' });
    });
  }

  async markUsed(id: number, at: Date): Promise<void> {
    await guard(
      this.#ctx.q.updateTable('api_tokens').set({ last_used_at: at.toISOString() }).where('id', '=', id).execute(),
    );
  }

  async countActive(): Promise<number> {
    const r = await guard(
      this.#ctx.q
        .selectFrom('api_tokens')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('revoked_at', 'is', null)
        .executeTakeFirst(),
    );
    return Number(r?.n ?? 0);
  }
}
