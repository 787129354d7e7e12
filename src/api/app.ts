import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync, type RawServerDefault } from 'fastify';
import { Counter, Histogram, Registry } from 'prom-client';
import { ScsError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../store/store.ts';
import { can, describePermission, type Permission } from './access.ts';
import type { ApiConfig, ApiLimits, RouteContext } from './context.ts';
import { PskCountsPublisher } from './counts.ts';
import { bridgeProvisioningEvents, EventHub, type ProvisioningEventSource } from './events.ts';
import { errorHandler, notFoundHandler } from './problem.ts';
import { auditRoutes } from './routes/audit.ts';
import { batchRoutes } from './routes/batches.ts';
import { DEVICE_SCHEMAS, deviceRoutes } from './routes/devices.ts';
import { deviceActionRoutes } from './routes/device-actions.ts';
import { eventRoutes } from './routes/events.ts';
import { JOB_SCHEMAS, jobRoutes } from './routes/jobs.ts';
import { PROFILE_SCHEMAS, profileRoutes } from './routes/profiles.ts';
import { pskRoutes } from './routes/psks.ts';
import { systemRoutes } from './routes/system.ts';
import { taskRoutes } from './routes/tasks.ts';
import { IMPORT_MAX_BYTES, transferRoutes } from './routes/transfer.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { problemResponse, SHARED_SCHEMAS } from './schemas.ts';
import { TaskRegistry } from './tasks.ts';
import { TokenAuthenticator } from './tokens.ts';

export const API_PREFIX = '/api/v1';
export const API_VERSION = '1.0.0';

export interface ApiDeps {
  readonly config: ApiConfig;
  readonly store: Store;
  readonly log: Logger;
  /** The server's prom-client registry (src/metrics.ts); the API adds its request metrics to it. */
  readonly metrics?: Registry;
  /** Provisioning progress for the live event stream, when the runner is running. */
  readonly provisioningEvents?: ProvisioningEventSource;
}

export interface ApiOptions {
  /** Certificate and key (PEM): serve HTTPS. */
  readonly https?: { readonly cert: Buffer; readonly key: Buffer };
  readonly limits?: Partial<ApiLimits>;
  /** Least time between two `last_used_at` writes per token. */
  readonly tokenTouchIntervalMs?: number;
  /** Least time between two `psk.counts` events. */
  readonly countsIntervalMs?: number;
  /**
   * Plugins registered at the root after the API's routes, e.g. the web console's static files
   * at `/`. Routes they add under /api must carry a permission like every API route.
   */
  readonly extensions?: readonly FastifyPluginAsync[];
}

/** What createApi returns: the fastify instance with the API's own parts on `scs`. */
export type Api = FastifyInstance<RawServerDefault> & { readonly scs: ApiParts };

export interface ApiParts {
  readonly hub: EventHub;
  readonly tasks: TaskRegistry;
  readonly counts: PskCountsPublisher;
}

const DEFAULT_LIMITS: ApiLimits = { generateSyncMax: 10_000, heartbeatMs: 15_000, importMaxBytes: IMPORT_MAX_BYTES };

/**
 * The REST API (docs/api.md): fastify with TypeBox schemas on every input and output,
 * RFC 9457 errors (problem.ts), token access control (access.ts, tokens.ts), the OpenAPI
 * document at /openapi.json and swagger-ui at /docs (served from the package: no network).
 * Collaborators are passed in; nothing is global, so tests build as many as they like.
 */
export async function createApi(deps: ApiDeps, options: ApiOptions = {}): Promise<Api> {
  const log = deps.log.child({ component: 'api' });
  const limits: ApiLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const tls = options.https;
  const app = Fastify({
    loggerInstance: log,
    // One line per request from the onResponse hook below, with the token name, not fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    exposeHeadRoutes: false,
    bodyLimit: 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: true } },
    serverFactory: (handler) =>
      // An https.Server serves requests exactly like an http.Server; fastify's types know one kind.
      (tls === undefined
        ? http.createServer(handler)
        : https.createServer({ cert: tls.cert, key: tls.key }, handler)) as http.Server,
  }).withTypeProvider<TypeBoxTypeProvider>();

  const hub = new EventHub();
  const tasks = new TaskRegistry(hub, log);
  const counts = new PskCountsPublisher(deps.store, hub, log, { intervalMs: options.countsIntervalMs ?? 500 });
  const auth = new TokenAuthenticator(deps.store, { touchIntervalMs: options.tokenTouchIntervalMs ?? 60_000 });
  const ctx: RouteContext = { config: deps.config, store: deps.store, log, hub, tasks, counts, limits };
  app.decorate('scs', { hub, tasks, counts } satisfies ApiParts);
  app.decorateRequest('principal', null);

  // JSON only (uploads add their own parsers on their routes): anything else is a 415, not a string body.
  app.removeContentTypeParser('text/plain');
  for (const schema of [...SHARED_SCHEMAS, ...PROFILE_SCHEMAS, ...DEVICE_SCHEMAS, ...JOB_SCHEMAS])
    app.addSchema(schema);
  app.setErrorHandler(errorHandler(log));
  app.setNotFoundHandler(notFoundHandler);

  // Secure by default: a route under /api without a permission is a programming error, and
  // every route gets its permission, the roles holding it and the error responses in OpenAPI.
  app.addHook('onRoute', (route) => {
    const permission = route.config?.permission;
    if (route.url.startsWith('/api/') && permission === undefined) {
      throw new Error(`route ${String(route.method)} ${route.url} has no permission`);
    }
    if (permission === undefined) return;
    const isPublic = permission === 'public';
    route.schema = {
      ...route.schema,
      'x-permission': permission,
      ...(isPublic ? { security: [] } : { 'x-roles': describePermission(permission) }),
      response: {
        ...(isPublic
          ? {}
          : { 401: problemResponse('no valid API token'), 403: problemResponse('role lacks permission') }),
        ...(route.schema?.body !== undefined ||
        route.schema?.querystring !== undefined ||
        route.schema?.params !== undefined
          ? { 400: problemResponse('invalid input: `errors` names each field') }
          : {}),
        500: problemResponse('unexpected server error'),
        ...(route.schema?.response as Record<string, unknown> | undefined),
      },
    };
  });

  // Authentication, then authorization, before the body is even parsed.
  app.addHook('onRequest', async (request) => {
    const permission = request.routeOptions.config.permission;
    if (permission === undefined || permission === 'public') return;
    const principal = await auth.authenticate(request.headers.authorization);
    request.principal = principal;
    if (!can(principal, permission)) {
      throw new ScsError(
        'SCS_FORBIDDEN',
        `token "${principal.name}" (${principal.role}) may not do this: it needs ${permission}, held by ${describePermission(permission)}`,
        { details: { permission, role: principal.role } },
      );
    }
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    // Responses may carry PSK data; no cache keeps a copy.
    if (request.url.startsWith('/api/') && !reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  });

  const registry = deps.metrics ?? new Registry();
  const requests = metric(
    registry,
    'scs_api_requests_total',
    () =>
      new Counter({
        name: 'scs_api_requests_total',
        help: 'REST API requests by method, route and status',
        labelNames: ['method', 'route', 'status'],
        registers: [registry],
      }),
  );
  const duration = metric(
    registry,
    'scs_api_request_duration_seconds',
    () =>
      new Histogram({
        name: 'scs_api_request_duration_seconds',
        help: 'REST API request duration by route',
        labelNames: ['method', 'route'],
        buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
        registers: [registry],
      }),
  );
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unknown';
    const seconds = reply.elapsedTime / 1000;
    requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    duration.observe({ method: request.method, route }, seconds);
    request.log.info(
      {
        method: request.method,
        route,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        token: request.principal?.name,
        reqId: request.id,
      },
      'request',
    );
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'amt-scs REST API',
        version: API_VERSION,
        description:
          'Intel AMT Setup and Configuration Server (PSK provisioning). Every route under /api/v1 needs ' +
          '`Authorization: Bearer <token>`; `x-roles` on each operation lists who may call it. Errors are ' +
          'RFC 9457 application/problem+json with a stable `code` (docs/errors.md).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'scs_... API token' } } },
      security: [{ bearer: [] }],
      tags: [
        { name: 'psks', description: 'PID/PPS pairs' },
        { name: 'batches', description: 'PSK batches and their counts' },
        { name: 'profiles', description: 'provisioning profiles (ETag / If-Match)' },
        { name: 'devices', description: 'provisioned and provisioning devices' },
        { name: 'jobs', description: 'provisioning jobs: live step, attempts, errors' },
        { name: 'audit', description: 'the hash-chained audit log' },
        { name: 'tokens', description: 'API tokens (admin)' },
        { name: 'tasks', description: 'background tasks (large generates)' },
        { name: 'events', description: 'live Server-Sent Events' },
        { name: 'system', description: 'health, metrics, identity' },
      ],
    },
    // Components named by their $id (Psk, Problem, ...) rather than def-0, def-1.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  });
  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    // The plugin's policy, minus what would let the page reach other hosts (https: sources, the
    // swagger validator) and minus upgrade-insecure-requests (it breaks the page on plain HTTP).
    staticCSP: true,
    transformStaticCSP: (header) =>
      header
        .replace(/ https:/g, '')
        .replace(' validator.swagger.io', '')
        .replace(/\s*upgrade-insecure-requests;?/, ''),
    uiConfig: { docExpansion: 'list', deepLinking: true, validatorUrl: null },
  });
  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());

  await app.register(systemRoutes, { ctx, registry });
  await app.register(pskRoutes, { ctx, prefix: API_PREFIX });
  await app.register(transferRoutes, { ctx, prefix: API_PREFIX });
  await app.register(batchRoutes, { ctx, prefix: API_PREFIX });
  await app.register(profileRoutes, { ctx, prefix: API_PREFIX });
  await app.register(deviceRoutes, { ctx, prefix: API_PREFIX });
  await app.register(deviceActionRoutes, { ctx, prefix: API_PREFIX });
  await app.register(jobRoutes, { ctx, prefix: API_PREFIX });
  await app.register(auditRoutes, { ctx, prefix: API_PREFIX });
  await app.register(tokenRoutes, { ctx, prefix: API_PREFIX });
  await app.register(taskRoutes, { ctx, prefix: API_PREFIX });
  await app.register(eventRoutes, { ctx, prefix: API_PREFIX });
  for (const extension of options.extensions ?? []) {
    // Wrapped so that a synchronous throw (a route without permission) rejects here, not later.
    await app.register(async (child, opts) => extension(child, opts));
  }

  // Subscribed last: a createApi that failed above leaves no listener behind.
  const unbridge =
    deps.provisioningEvents === undefined
      ? undefined
      : bridgeProvisioningEvents(deps.provisioningEvents, hub, () => counts.poke());
  app.addHook('onClose', async () => {
    unbridge?.();
    await tasks.close();
    await counts.close();
  });
  return app as unknown as Api;
}

/** One metric per registry, even when several APIs share it (tests) or it is re-created. */
function metric<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

export type { Permission };
