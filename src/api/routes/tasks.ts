import { Type, type FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox';
import type { RouteOptions } from '../context.ts';
import { problemResponse, ref, TaskSchema } from '../schemas.ts';

/** Background tasks (large generates): progress and outcome. In memory: gone after a restart. */
export const taskRoutes: FastifyPluginCallbackTypebox<RouteOptions> = (app, { ctx }, done) => {
  app.get(
    '/tasks',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['tasks'],
        summary: 'Recent background tasks, newest first',
        response: { 200: Type.Object({ items: Type.Array(ref(TaskSchema)) }) },
      },
    },
    () => ({ items: ctx.tasks.list() }),
  );

  app.get(
    '/tasks/:id',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['tasks'],
        summary: 'One background task: state, done/total, result or error',
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 200: ref(TaskSchema), 404: problemResponse('SCS_TASK_NOT_FOUND') },
      },
    },
    (request) => ctx.tasks.get(request.params.id),
  );
  done();
};
