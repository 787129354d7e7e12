import type { ServerResponse } from 'node:http';
import { Type, type FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox';
import type { RouteOptions } from '../context.ts';
import { readPskCounts } from '../counts.ts';
import { EVENT_TYPES, type ApiEvent } from '../events.ts';

/** A client that reads slower than events arrive is cut off past this much unsent data. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * `GET /api/v1/events`: Server-Sent Events (WHATWG HTML §9.2). Each event has `id`, `event`
 * (its type) and one `data` line of JSON. On connect: `retry`, then a `psk.counts` snapshot,
 * then events replayed after Last-Event-ID (header, or `lastEventId` in the query), then live
 * ones; a comment line every heartbeat keeps proxies from closing an idle stream.
 */
export const eventRoutes: FastifyPluginCallbackTypebox<RouteOptions> = (app, { ctx }, done) => {
  const open = new Set<ServerResponse>();

  // Streams never end by themselves: close them first, or closing the server would wait forever.
  app.addHook('preClose', (hookDone) => {
    for (const res of open) res.end();
    open.clear();
    hookDone();
  });

  app.get(
    '/events',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['events'],
        summary: 'Live events (text/event-stream): psk.counts, task, job, device',
        description:
          `Event types: ${EVENT_TYPES.join(', ')}. Browsers: EventSource cannot send an Authorization header, so ` +
          'read the stream with fetch() and a ReadableStream (the console does), or any SSE client that sets headers.',
        querystring: Type.Object(
          { lastEventId: Type.Optional(Type.Integer({ minimum: 0, description: 'as the Last-Event-ID header' })) },
          { additionalProperties: false },
        ),
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })) }),
        produces: ['text/event-stream'],
        response: {
          200: { description: 'an endless event stream', content: { 'text/event-stream': { schema: Type.String() } } },
        },
      },
    },
    async (request, reply) => {
      const header = request.headers['last-event-id'];
      const lastId = typeof header === 'string' ? Number(header) : request.query.lastEventId;
      // Read before hijacking: a database error still becomes a problem response.
      const snapshot = await readPskCounts(ctx.store);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-content-type-options': 'nosniff',
        // nginx and similar proxies buffer responses unless told not to.
        'x-accel-buffering': 'no',
      });
      res.flushHeaders();
      const send = (text: string): void => {
        if (res.writableEnded || res.destroyed) return;
        if (res.writableLength > MAX_BUFFERED_BYTES) {
          request.log.warn({ reqId: request.id }, 'event stream client too slow; closing it');
          res.destroy();
          return;
        }
        res.write(text);
      };
      const sendEvent = (e: ApiEvent): void =>
        send(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`);
      send('retry: 3000\n\n');
      // The snapshot has no id: it is state, not a point in the event sequence.
      send(`event: psk.counts\ndata: ${JSON.stringify(snapshot)}\n\n`);
      const unsubscribe = ctx.hub.subscribe(sendEvent, lastId);
      const heartbeat = setInterval(() => send(': keep-alive\n\n'), ctx.limits.heartbeatMs);
      open.add(res);
      res.on('close', () => {
        clearInterval(heartbeat);
        unsubscribe();
        open.delete(res);
      });
    },
  );
  done();
};
