import { Type, type FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox';
import { ScsError } from '../../errors.ts';
import { formatPid, parsePid } from '../../psk/pid.ts';
import { formatPps } from '../../psk/pps.ts';
import { generatePsks, GENERATE_MAX, revokePsks } from '../../psk/service.ts';
import { checkBatchName, defaultBatchName } from '../../store/batch.ts';
import type { PskRow } from '../../store/store.ts';
import { emptyBodyIsObject, principalOf, type RouteOptions } from '../context.ts';
import { readPskCounts } from '../counts.ts';
import {
  PidInput,
  problemResponse,
  PskCountsSchema,
  PskSchema,
  PskStateSchema,
  ref,
  TaskSchema,
  type PskBody,
} from '../schemas.ts';

export const PSK_PAGE_MAX = 1000;
export const REVOKE_MAX = 10_000;

export function pskBody(r: PskRow): PskBody {
  return {
    id: r.id,
    pid: formatPid(r.pid),
    batch: r.batch,
    state: r.state,
    priorState: r.priorState,
    deviceUuid: r.deviceUuid,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

const PidParams = Type.Object({ pid: PidInput });
const BatchName = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$' });

/** PSKs: list and get (never the PPS), reveal one PPS (audited), generate, revoke. */
export const pskRoutes: FastifyPluginCallbackTypebox<RouteOptions> = (app, { ctx }, done) => {
  const { store } = ctx;

  app.get(
    '/psks',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['psks'],
        summary: 'List PSKs (no PPS), in id order, with keyset paging',
        description: 'Pass `next` from a page as `after` to get the following page; `next` is null on the last page.',
        querystring: Type.Object(
          {
            state: Type.Optional(
              Type.Array(ref(PskStateSchema), { description: 'one or more states (repeat the parameter)' }),
            ),
            batch: Type.Optional(BatchName),
            after: Type.Optional(Type.Integer({ minimum: 0, description: 'id of the last PSK of the previous page' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: PSK_PAGE_MAX, default: 100 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ items: Type.Array(ref(PskSchema)), next: Type.Union([Type.Integer(), Type.Null()]) }),
          404: problemResponse('SCS_BATCH_NOT_FOUND'),
        },
      },
    },
    async (request) => {
      const q = request.query;
      // The validator fills defaults in; the types cannot know.
      const limit = q.limit ?? 100;
      if (q.batch !== undefined && (await store.batches.get(q.batch)) === undefined) {
        throw new ScsError('SCS_BATCH_NOT_FOUND', `no batch named "${q.batch}"`, { details: { batch: q.batch } });
      }
      // One more than asked: tells whether a next page exists without an extra round trip.
      const rows = await store.psks.list({
        ...(q.state === undefined ? {} : { state: q.state }),
        ...(q.batch === undefined ? {} : { batch: q.batch }),
        ...(q.after === undefined ? {} : { afterId: q.after }),
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return { items: page.map(pskBody), next: rows.length > limit && last !== undefined ? last.id : null };
    },
  );

  app.get(
    '/psks/stats',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['psks'],
        summary: 'PSK counts by state, over all batches',
        response: { 200: Type.Object({ counts: ref(PskCountsSchema), total: Type.Integer() }) },
      },
    },
    async () => readPskCounts(store),
  );

  app.get(
    '/psks/:pid',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['psks'],
        summary: 'One PSK, without its PPS',
        params: PidParams,
        response: { 200: ref(PskSchema), 404: problemResponse('SCS_PSK_NOT_FOUND') },
      },
    },
    async (request) => {
      const pid = parsePid(request.params.pid);
      const row = await store.psks.get(pid);
      if (row === undefined) {
        throw new ScsError('SCS_PSK_NOT_FOUND', `no PSK with PID ${formatPid(pid)}`, {
          details: { pid: formatPid(pid) },
        });
      }
      return pskBody(row);
    },
  );

  app.post(
    '/psks/:pid/reveal',
    {
      config: { permission: 'secret.reveal' },
      preValidation: emptyBodyIsObject,
      schema: {
        tags: ['psks'],
        summary: 'Reveal the PPS of one PSK (audited as psk.reveal with the token name)',
        params: PidParams,
        body: Type.Object(
          {
            purpose: Type.Optional(
              Type.String({ minLength: 1, maxLength: 200, description: 'recorded in the audit entry' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            pid: Type.String({ description: 'display form XXXX-XXXX' }),
            pps: Type.String({ description: 'display form, 8 groups of 4 joined by dashes (39 characters)' }),
          }),
          404: problemResponse('SCS_PSK_NOT_FOUND'),
        },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const pid = parsePid(request.params.pid);
      const purpose = request.body.purpose;
      const pps = await store.psks.reveal(pid, {
        actor: p.actor,
        purpose: purpose === undefined ? 'api' : `api: ${purpose}`,
      });
      return { pid: formatPid(pid), pps: formatPps(pps.reveal()) };
    },
  );

  app.post(
    '/psks/generate',
    {
      config: { permission: 'psk.write' },
      schema: {
        tags: ['psks'],
        summary: 'Generate new PID/PPS pairs (CSPRNG) into a batch',
        description:
          `Up to ${ctx.limits.generateSyncMax} PSKs are generated within the request (201). Larger counts, or ` +
          '`async: true`, start a background task (202, `Location: /api/v1/tasks/{id}`) that reports progress in ' +
          '`task` events on /api/v1/events and at GET /api/v1/tasks/{id}.',
        body: Type.Object(
          {
            count: Type.Integer({ minimum: 1, maximum: GENERATE_MAX }),
            batch: Type.Optional(BatchName),
            async: Type.Optional(Type.Boolean({ description: 'run as a background task whatever the count' })),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({ batch: Type.String(), generated: Type.Integer(), collisions: Type.Integer() }),
          202: Type.Object({ task: ref(TaskSchema) }),
        },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const { count } = request.body;
      const batch = checkBatchName(request.body.batch ?? defaultBatchName('gen'));
      if (request.body.async === true || count > ctx.limits.generateSyncMax) {
        const task = ctx.tasks.start('psk.generate', p.actor, count, async (t) => {
          const r = await generatePsks(store, {
            count,
            batch,
            actor: p.actor,
            signal: t.signal,
            onProgress: (done) => {
              t.progress(done);
              ctx.counts.poke();
            },
          });
          return { batch: r.batch, generated: r.generated, collisions: r.collisions };
        });
        return reply.code(202).header('location', `/api/v1/tasks/${task.id}`).send({ task });
      }
      const r = await generatePsks(store, { count, batch, actor: p.actor });
      ctx.counts.poke();
      return reply.code(201).send({ batch: r.batch, generated: r.generated, collisions: r.collisions });
    },
  );

  app.post(
    '/psks/revoke',
    {
      config: { permission: 'psk.write' },
      schema: {
        tags: ['psks'],
        summary: 'Revoke PSKs (available, exported or in use): all or none',
        body: Type.Object(
          {
            pids: Type.Array(PidInput, { minItems: 1, maxItems: REVOKE_MAX }),
            reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ revoked: Type.Integer() }),
          404: problemResponse('SCS_PSK_NOT_FOUND: a PID is not in the database (nothing changed)'),
          409: problemResponse('SCS_PSK_STATE_INVALID: a PSK is consumed, revoked or transferred (nothing changed)'),
        },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const pids = request.body.pids.map((s) => parsePid(s));
      const reason = request.body.reason;
      const revoked = await revokePsks(store, pids, { actor: p.actor, ...(reason === undefined ? {} : { reason }) });
      ctx.counts.poke();
      return { revoked };
    },
  );
  done();
};
