import { Type, type FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox';
import { ScsError } from '../../errors.ts';
import type { BatchStats } from '../../store/store.ts';
import type { RouteOptions } from '../context.ts';
import { BatchSchema, problemResponse, ref } from '../schemas.ts';

export function batchBody(b: BatchStats) {
  return { name: b.name, createdAt: b.createdAt.toISOString(), profile: b.profile, counts: b.counts, total: b.total };
}

/** PSK batches with their counts by state. */
export const batchRoutes: FastifyPluginCallbackTypebox<RouteOptions> = (app, { ctx }, done) => {
  app.get(
    '/batches',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['batches'],
        summary: 'Every batch with its PSK counts by state, oldest first',
        response: { 200: Type.Object({ items: Type.Array(ref(BatchSchema)) }) },
      },
    },
    async () => ({ items: (await ctx.store.batches.list()).map(batchBody) }),
  );

  app.get(
    '/batches/:name',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['batches'],
        summary: 'One batch with its PSK counts by state',
        params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 200: ref(BatchSchema), 404: problemResponse('SCS_BATCH_NOT_FOUND') },
      },
    },
    async (request) => {
      const { name } = request.params;
      // The store lists batches with counts in one grouped query; there is no per-batch variant.
      const b = (await ctx.store.batches.list()).find((x) => x.name === name);
      if (b === undefined)
        throw new ScsError('SCS_BATCH_NOT_FOUND', `no batch named "${name}"`, { details: { batch: name } });
      return batchBody(b);
    },
  );
  done();
};
