import { Type, type FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox';
import { API_GRANTS, API_ROLES, type ApiTokenRow } from '../../store/tokens/tokens.ts';
import { principalOf, type RouteOptions } from '../context.ts';
import { problemResponse, ref, TokenSchema, StringEnum } from '../schemas.ts';
import { createToken } from '../tokens.ts';

export function tokenBody(t: ApiTokenRow) {
  return {
    name: t.name,
    role: t.role,
    grants: [...t.grants],
    createdAt: t.createdAt.toISOString(),
    createdBy: t.createdBy,
    lastUsedAt: t.lastUsedAt?.toISOString() ?? null,
    revokedAt: t.revokedAt?.toISOString() ?? null,
  };
}

const TokenName = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' });

/** API tokens: admin only. The token text is in the create response and nowhere else, ever. */
export const tokenRoutes: FastifyPluginCallbackTypebox<RouteOptions> = (app, { ctx }, done) => {
  app.get(
    '/tokens',
    {
      config: { permission: 'token.manage' },
      schema: {
        tags: ['tokens'],
        summary: 'API tokens (never the tokens themselves)',
        querystring: Type.Object(
          { includeRevoked: Type.Optional(Type.Boolean({ default: false })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(ref(TokenSchema)) }) },
      },
    },
    async (request) => ({
      items: (await ctx.store.tokens.list({ includeRevoked: request.query.includeRevoked === true })).map(tokenBody),
    }),
  );

  app.post(
    '/tokens',
    {
      config: { permission: 'token.manage' },
      schema: {
        tags: ['tokens'],
        summary: 'Create a token; the response holds it, once (audited as token.create)',
        body: Type.Object(
          {
            name: TokenName,
            role: StringEnum(API_ROLES),
            grants: Type.Array(StringEnum(API_GRANTS), {
              default: [],
              maxItems: API_GRANTS.length,
            }),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Intersect([
            ref(TokenSchema),
            Type.Object({ token: Type.String({ description: 'scs_...: shown this once, store it now' }) }),
          ]),
          409: problemResponse('SCS_TOKEN_NAME_TAKEN'),
        },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const { name, role, grants } = request.body;
      const created = await createToken(ctx.store, { name, role, grants, actor: p.actor });
      return reply.code(201).send({ ...tokenBody(created.row), token: created.token.reveal() });
    },
  );

  app.delete(
    '/tokens/:name',
    {
      config: { permission: 'token.manage' },
      schema: {
        tags: ['tokens'],
        summary: 'Revoke a token (audited as token.revoke); it stops working at once',
        params: Type.Object({ name: TokenName }),
        response: { 200: ref(TokenSchema), 404: problemResponse('SCS_TOKEN_NOT_FOUND') },
      },
    },
    async (request) => {
      const p = principalOf(request);
      return tokenBody(await ctx.store.tokens.revoke(request.params.name, { actor: p.actor }));
    },
  );
  done();
};
