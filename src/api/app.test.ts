import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FastifyPluginAsync } from 'fastify';
import { startHarness } from './testing.ts';

describe('createApi extensions', () => {
  it('registers plugins after the API (a console at /), and they get the same security headers', async () => {
    const console: FastifyPluginAsync = (app) => {
      app.get('/', (_request, reply) => reply.type('text/html').send('<!doctype html><title>console</title>'));
      return Promise.resolve();
    };
    const h = await startHarness({ api: { extensions: [console] } });
    try {
      const res = await h.api.inject({ method: 'GET', url: '/' });
      assert.equal(res.statusCode, 200);
      assert.match(res.body, /console/);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal((await h.api.inject({ method: 'GET', url: '/api/v1/me' })).statusCode, 401);
    } finally {
      await h.close();
    }
  });

  it('refuses a route under /api that names no permission (default deny)', async () => {
    const careless: FastifyPluginAsync = (app) => {
      app.get('/api/v1/secret-stuff', () => ({ everything: true }));
      return Promise.resolve();
    };
    await assert.rejects(startHarness({ api: { extensions: [careless] } }), /has no permission/);
  });
});
