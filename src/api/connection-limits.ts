import type { Server } from 'node:http';

/**
 * Bounds on REST API connections (docs/security.md, "Hello abuse": slow and oversized clients).
 * fastify applies its own timeout options only to servers it creates; the API brings its own
 * (http or https, src/api/app.ts serverFactory), so they are set here, on the node server.
 */
export const API_CONNECTION_LIMITS = {
  /** All request headers must arrive within this (slowloris on headers). Node's default is 60 s. */
  headersTimeoutMs: 10_000,
  /**
   * The whole request, body included, must arrive within this. Generous: a bundle or CSV upload
   * of the largest accepted size over a slow link. Node's default is 300 s.
   */
  requestTimeoutMs: 120_000,
  /** A socket with no bytes either way for this long is closed (SSE sends a heartbeat every 15 s). */
  idleTimeoutMs: 60_000,
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: 5_000,
  /** Requests one keep-alive connection may carry before the server closes it. */
  maxRequestsPerSocket: 1000,
  /** Node checks headersTimeout/requestTimeout this often. */
  checkIntervalMs: 1_000,
} as const;

/** Applies API_CONNECTION_LIMITS and the connection cap to the API's server before it listens. */
export function applyConnectionLimits(server: Server, maxConnections: number | undefined): void {
  const l = API_CONNECTION_LIMITS;
  server.headersTimeout = l.headersTimeoutMs;
  server.requestTimeout = l.requestTimeoutMs;
  server.keepAliveTimeout = l.keepAliveTimeoutMs;
  server.maxRequestsPerSocket = l.maxRequestsPerSocket;
  server.setTimeout(l.idleTimeoutMs);
  // Read by node when the server starts listening (it is a constructor option in the types only).
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = l.checkIntervalMs;
  if (maxConnections !== undefined) server.maxConnections = maxConnections;
}
