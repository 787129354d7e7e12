import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startHarness, type ApiHarness } from '../api/testing.ts';
import { CONSOLE_CSP, consolePlugin, findConsoleBuild } from './plugin.ts';

/** The console's static files as an API extension, over a small stand-in build (real fastify, inject). */
describe('web console static files', () => {
  let dir: string;
  let h: ApiHarness;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'scs-console-'));
    mkdirSync(path.join(dir, 'dist', 'console', 'assets'), { recursive: true });
    writeFileSync(path.join(dir, 'dist', 'console', 'index.html'), '<!doctype html><title>console</title>');
    writeFileSync(path.join(dir, 'dist', 'console', 'assets', 'index-abc123.js'), 'console.log(1)');
    h = await startHarness({ api: { extensions: [consolePlugin(path.join(dir, 'dist', 'console'))] } });
  });
  after(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page at / with a same-origin-only Content-Security-Policy and no caching', async () => {
    const r = await h.api.inject({ method: 'GET', url: '/' });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    assert.equal(r.body, '<!doctype html><title>console</title>');
    assert.equal(r.headers['content-security-policy'], CONSOLE_CSP);
    assert.match(CONSOLE_CSP, /default-src 'self'/);
    assert.doesNotMatch(CONSOLE_CSP, /unsafe-inline|unsafe-eval|https?:/);
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.equal(r.headers['x-frame-options'], 'DENY');
  });

  it('serves hashed assets as immutable', async () => {
    const r = await h.api.inject({ method: 'GET', url: '/assets/index-abc123.js' });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /javascript/);
    assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable');
  });

  it('leaves unknown paths and the API to the API: a 404 problem, and 401 without a token', async () => {
    const missing = await h.api.inject({ method: 'GET', url: '/assets/other.js' });
    assert.equal(missing.statusCode, 404);
    assert.equal((JSON.parse(missing.body) as { code: string }).code, 'SCS_ROUTE_NOT_FOUND');
    const api = await h.api.inject({ method: 'GET', url: '/api/v1/psks' });
    assert.equal(api.statusCode, 401);
    const spa = await h.api.inject({ method: 'GET', url: '/psks' });
    assert.equal(spa.statusCode, 404, 'the console routes with #/..., so no catch-all page hides a mistyped API path');
  });

  it('finds a build by looking upwards from a directory, and says when there is none', () => {
    assert.equal(findConsoleBuild(path.join(dir, 'src', 'console')), path.join(dir, 'dist', 'console'));
    const empty = mkdtempSync(path.join(tmpdir(), 'scs-console-none-'));
    try {
      assert.equal(findConsoleBuild(path.join(empty, 'a', 'b')), undefined);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
