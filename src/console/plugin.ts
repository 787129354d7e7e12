import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';

/**
 * Serves the web console's static build (dist/console, made by `vite build`: see
 * docs/console.md) at `/`, as an extension of the REST API (createApi's `extensions`).
 * The console is files only: it reaches the server through the same /api/v1 as everyone else,
 * with the signed-in token, so it needs no permission of its own.
 */

/**
 * Locks the page to this server: scripts, styles and calls from here only, no frames, no
 * plugins. Inline scripts and styles are refused (vite emits none); `data:` images for the icon.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The build's directory, or undefined when it was never built. Looked for upwards from this
 * file, so it is found from the sources (src/console) and from tsc's output (dist/src/console).
 */
export function findConsoleBuild(from: string = path.dirname(fileURLToPath(import.meta.url))): string | undefined {
  let dir = from;
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'dist', 'console');
    if (existsSync(path.join(candidate, 'index.html'))) return candidate;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

/** The fastify plugin serving `root` (a console build) at `/`. */
export function consolePlugin(root: string): FastifyPluginAsync {
  return async (app) => {
    await app.register(fastifyStatic, {
      root,
      prefix: '/',
      // One route per built file, found at start: any other path stays the API's 404 problem.
      wildcard: false,
      index: ['index.html'],
      decorateReply: false,
      serveDotFiles: false,
      cacheControl: false,
      setHeaders(res, file) {
        res.setHeader('content-security-policy', CONSOLE_CSP);
        res.setHeader('x-frame-options', 'DENY');
        // Hashed asset names change with their content: cache them for good; the page never.
        res.setHeader(
          'cache-control',
          path.basename(path.dirname(file)) === 'assets' ? 'public, max-age=31536000, immutable' : 'no-cache',
        );
      },
    });
  };
}
