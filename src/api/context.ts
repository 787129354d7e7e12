import type { FastifyRequest, preValidationHookHandler } from 'fastify';
import type { Config } from '../config.ts';
import { ScsError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../store/store.ts';
import type { Permission } from './access.ts';
import type { PskCountsPublisher } from './counts.ts';
import type { EventHub } from './events.ts';
import type { TaskRegistry } from './tasks.ts';
import type { Principal } from './tokens.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The token's identity on routes that need one (set by the auth hook); null elsewhere. */
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Who may call the route (src/api/access.ts); `public` = no token. Required under /api. */
    permission?: Permission | 'public';
  }
  interface FastifySchema {
    /** Copied into the OpenAPI operation: the permission and the roles that hold it. */
    'x-permission'?: string;
    'x-roles'?: string;
  }
}

/** What route modules are given: the collaborators of createApi, plus the API's own parts. */
export interface RouteContext {
  readonly config: ApiConfig;
  readonly store: Store;
  readonly log: Logger;
  readonly hub: EventHub;
  readonly tasks: TaskRegistry;
  readonly counts: PskCountsPublisher;
  readonly limits: ApiLimits;
}

/** The settings routes read: the data directory, /metrics access, and how device actions reach a device. */
export type ApiConfig = Pick<
  Config,
  | 'dataDir'
  | 'apiMetricsAuth'
  | 'amtTlsPort'
  | 'tlsMinVersion'
  | 'tlsMaxVersion'
  | 'tlsCiphers'
  | 'connectTimeoutMs'
  | 'callTimeoutMs'
>;

export interface ApiLimits {
  /** Above this count, POST /psks/generate runs as a background task (202). */
  readonly generateSyncMax: number;
  /** SSE comment line interval that keeps proxies from closing an idle stream. */
  readonly heartbeatMs: number;
  /** Largest import upload (it is read into memory before the import's transaction starts). */
  readonly importMaxBytes: number;
}

export interface RouteOptions {
  readonly ctx: RouteContext;
}

/** The caller of a route that has a permission (the auth hook guarantees one). */
export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) throw new ScsError('SCS_UNAUTHENTICATED', 'this route needs an API token');
  return request.principal;
}

/** For POST routes whose body is all optional: no body at all counts as `{}`. */
export const emptyBodyIsObject: preValidationHookHandler = (request, _reply, done) => {
  if (request.body === undefined || request.body === null) request.body = {};
  done();
};
