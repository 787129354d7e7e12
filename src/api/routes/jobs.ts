import { Type, type FastifyPluginCallbackTypebox, type Static } from '@fastify/type-provider-typebox';
import { ScsError } from '../../errors.ts';
import { formatPid, type Pid } from '../../psk/pid.ts';
import { JOB_STATES, type JobRow } from '../../store/provisioning/types.ts';
import type { RouteOptions } from '../context.ts';
import { Nullable, problemResponse, ref, StringEnum } from '../schemas.ts';

export const JOB_PAGE_MAX = 1000;
export const JobStateSchema = StringEnum(JOB_STATES, {
  $id: 'JobState',
  description: 'queued | running | succeeded | failed',
});
const DateTime = Type.String({ format: 'date-time' });

export const JobSchema = Type.Object(
  {
    id: Type.Integer(),
    deviceUuid: Type.String(),
    pid: Type.String({ description: 'PID of the hello that started the job (display form)' }),
    address: Type.String(),
    profile: Type.String(),
    state: ref(JobStateSchema),
    step: Nullable(Type.String({ description: 'the step running or last completed (docs/provisioning.md)' })),
    attempts: Type.Integer({ description: 'tries of the current step' }),
    errorCode: Nullable(Type.String({ description: 'stable code (docs/errors.md) of the failure' })),
    errorMessage: Nullable(Type.String()),
    commitSent: Type.Boolean({ description: 'CommitChanges was sent: the device may already be Post' }),
    renewalPid: Nullable(Type.String({ description: 'the new PSK taken for the device' })),
    renewalSkipped: Type.Boolean(),
    restarts: Type.Integer({ description: 'times the job started over from the first step' }),
    createdAt: DateTime,
    updatedAt: DateTime,
    finishedAt: Nullable(DateTime),
  },
  { $id: 'Job' },
);

export function jobBody(j: JobRow): Static<typeof JobSchema> {
  return {
    id: j.id,
    deviceUuid: j.deviceUuid,
    pid: formatPid(j.pid),
    address: j.address,
    profile: j.profile,
    state: j.state,
    step: j.step,
    attempts: j.attempts,
    errorCode: j.errorCode,
    errorMessage: j.errorMessage,
    commitSent: j.data.commitSent === true,
    renewalPid: j.data.newPid === undefined ? null : formatPid(j.data.newPid as Pid),
    renewalSkipped: j.data.renewalSkipped === true,
    restarts: j.data.restarts ?? 0,
    createdAt: j.createdAt.toISOString(),
    updatedAt: j.updatedAt.toISOString(),
    finishedAt: j.finishedAt?.toISOString() ?? null,
  };
}

/** Provisioning jobs: live status (step, attempts, errors), counts. */
export const jobRoutes: FastifyPluginCallbackTypebox<RouteOptions> = (app, { ctx }, done) => {
  const { store } = ctx;
  app.get(
    '/jobs',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['jobs'],
        summary: 'Provisioning jobs by id, newest first by default, with keyset paging (pass `next` as `after`)',
        querystring: Type.Object(
          {
            state: Type.Optional(
              Type.Array(ref(JobStateSchema), { description: 'one or more states (repeat the parameter)' }),
            ),
            device: Type.Optional(Type.String({ pattern: '^[0-9A-Fa-f-]{36}$', description: 'device UUID' })),
            order: Type.Optional(StringEnum(['asc', 'desc'], { default: 'desc' })),
            after: Type.Optional(Type.Integer({ minimum: 0, description: 'id of the last job of the previous page' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: JOB_PAGE_MAX, default: 100 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(ref(JobSchema)), next: Nullable(Type.Integer()) }) },
      },
    },
    async (request) => {
      const q = request.query;
      // The validator fills defaults in; the types cannot know.
      const limit = q.limit ?? 100;
      const rows = await store.jobs.list({
        order: q.order ?? 'desc',
        limit: limit + 1,
        ...(q.state === undefined ? {} : { state: q.state }),
        ...(q.device === undefined ? {} : { deviceUuid: q.device.toLowerCase() }),
        ...(q.after === undefined ? {} : { afterId: q.after }),
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return { items: page.map(jobBody), next: rows.length > limit && last !== undefined ? last.id : null };
    },
  );

  app.get(
    '/jobs/stats',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['jobs'],
        summary: 'Job counts by state',
        response: {
          200: Type.Object({
            counts: Type.Object(
              Object.fromEntries(JOB_STATES.map((s) => [s, Type.Integer()])) as Record<
                (typeof JOB_STATES)[number],
                ReturnType<typeof Type.Integer>
              >,
            ),
            total: Type.Integer(),
          }),
        },
      },
    },
    async () => {
      const counts = await store.jobs.countByState();
      return { counts, total: Object.values(counts).reduce((a, n) => a + n, 0) };
    },
  );

  app.get(
    '/jobs/:id',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['jobs'],
        summary: 'One provisioning job',
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        response: { 200: ref(JobSchema), 404: problemResponse('SCS_JOB_NOT_FOUND') },
      },
    },
    async (request) => {
      const j = await store.jobs.get(request.params.id);
      if (j === undefined) {
        throw new ScsError('SCS_JOB_NOT_FOUND', `no job ${request.params.id}`, { details: { id: request.params.id } });
      }
      return jobBody(j);
    },
  );
  done();
};

export const JOB_SCHEMAS = [JobStateSchema, JobSchema];
