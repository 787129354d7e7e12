import { Type, type FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';
import { isScsError, ScsError } from '../../errors.ts';
import { PERMISSIONS, permissionsOf } from '../access.ts';
import { principalOf, type RouteOptions } from '../context.ts';
import { problemFor, sendProblem } from '../problem.ts';
import { problemResponse, StringEnum } from '../schemas.ts';

/** `/healthz` (no token), `/metrics` (Prometheus text), `/api/v1/me` (who am I, what may I do). */
export const systemRoutes: FastifyPluginCallbackTypebox<RouteOptions & { readonly registry: Registry }> = (
  app,
  { ctx, registry },
  done,
) => {
  app.get(
    '/healthz',
    {
      config: { permission: 'public' },
      schema: {
        tags: ['system'],
        summary: 'Liveness and database reachability (no token)',
        response: {
          200: Type.Object({ status: Type.Literal('ok'), db: Type.Literal('ok') }),
          503: problemResponse('the database does not answer'),
        },
      },
    },
    async (request, reply) => {
      try {
        // One indexed row: proves the database answers without scanning anything.
        await ctx.store.audit.list({ limit: 1 });
        return { status: 'ok' as const, db: 'ok' as const };
      } catch (e) {
        request.log.warn({ err: e }, 'health check: database unreachable');
        const problem = problemFor(
          isScsError(e) ? e : new ScsError('SCS_STORE_FAILED', 'the database does not answer', { cause: e }),
          { requestId: request.id },
        );
        return sendProblem(reply, { ...problem, status: 503, detail: 'the database does not answer' });
      }
    },
  );

  app.get(
    '/metrics',
    {
      config: { permission: ctx.config.apiMetricsAuth === 'none' ? 'public' : 'metrics.read' },
      schema: {
        tags: ['system'],
        summary: 'Prometheus metrics (text exposition format)',
        produces: ['text/plain'],
        response: {
          200: { description: 'Prometheus text format 0.0.4', content: { 'text/plain': { schema: Type.String() } } },
        },
      },
    },
    async (_request, reply) => {
      const text = await registry.metrics();
      return reply
        .type(registry.contentType)
        .serializer((p: unknown) => String(p))
        .send(text);
    },
  );

  app.get(
    '/api/v1/me',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['system'],
        summary: 'The calling token: name, role, grants and the permissions they give',
        response: {
          200: Type.Object({
            name: Type.String(),
            role: Type.String(),
            grants: Type.Array(Type.String()),
            permissions: Type.Array(StringEnum(PERMISSIONS)),
          }),
        },
      },
    },
    (request) => {
      const p = principalOf(request);
      return { name: p.name, role: p.role, grants: [...p.grants], permissions: [...permissionsOf(p)] };
    },
  );
  done();
};
