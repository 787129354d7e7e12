import { Type, type FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox';
import { formatPid, parsePid } from '../../psk/pid.ts';
import type { AuditEntry } from '../../store/store.ts';
import type { RouteOptions } from '../context.ts';
import { AuditEntrySchema, PidInput, ref, StringEnum } from '../schemas.ts';

export const AUDIT_PAGE_MAX = 1000;

export function auditBody(e: AuditEntry) {
  return {
    seq: e.seq,
    at: e.at.toISOString(),
    actor: e.actor,
    action: e.action,
    pids: e.pids.map(formatPid),
    detail: e.detail,
    hash: e.hash,
  };
}

/** The audit log: list with filters and paging, verify the hash chain. */
export const auditRoutes: FastifyPluginCallbackTypebox<RouteOptions> = (app, { ctx }, done) => {
  app.get(
    '/audit',
    {
      config: { permission: 'audit.read' },
      schema: {
        tags: ['audit'],
        summary: 'Audit entries, newest first by default, with seq paging',
        description:
          'order=desc (default): pass `next` as `before` for the next (older) page. order=asc: pass `next` as ' +
          '`after`. `next` is null on the last page.',
        querystring: Type.Object(
          {
            pid: Type.Optional(PidInput),
            action: Type.Optional(
              Type.String({ minLength: 1, maxLength: 100, description: 'psk.generate, psk.reveal, token.create, ...' }),
            ),
            order: Type.Optional(StringEnum(['asc', 'desc'], { default: 'desc' })),
            after: Type.Optional(Type.Integer({ minimum: 0 })),
            before: Type.Optional(Type.Integer({ minimum: 1 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: AUDIT_PAGE_MAX, default: 100 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            items: Type.Array(ref(AuditEntrySchema)),
            next: Type.Union([Type.Integer(), Type.Null()]),
          }),
        },
      },
    },
    async (request) => {
      const q = request.query;
      // The validator fills defaults in; the types cannot know.
      const limit = q.limit ?? 100;
      const rows = await ctx.store.audit.list({
        order: q.order ?? 'desc',
        limit: limit + 1,
        ...(q.pid === undefined ? {} : { pid: parsePid(q.pid) }),
        ...(q.action === undefined ? {} : { action: q.action }),
        ...(q.after === undefined ? {} : { afterSeq: q.after }),
        ...(q.before === undefined ? {} : { beforeSeq: q.before }),
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return { items: page.map(auditBody), next: rows.length > limit && last !== undefined ? last.seq : null };
    },
  );

  app.get(
    '/audit/verify',
    {
      config: { permission: 'audit.read' },
      schema: {
        tags: ['audit'],
        summary: 'Walk the whole hash chain; ok=false names the first entry that does not verify',
        response: {
          200: Type.Union([
            Type.Object({
              ok: Type.Literal(true),
              entries: Type.Integer(),
              headSeq: Type.Integer(),
              headHash: Type.String(),
            }),
            Type.Object({
              ok: Type.Literal(false),
              entries: Type.Integer(),
              brokenSeq: Type.Integer(),
              reason: Type.String(),
            }),
          ]),
        },
      },
    },
    async () => ctx.store.audit.verify(),
  );
  done();
};
