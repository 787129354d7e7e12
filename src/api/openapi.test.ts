import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHarness, type ApiHarness } from './testing.ts';

interface Operation {
  'x-permission'?: string;
  'x-roles'?: string;
  security?: unknown[];
  parameters?: { name: string; in: string; required?: boolean }[];
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
  tags?: string[];
  summary?: string;
}
interface OpenApi {
  openapi: string;
  info: { title: string; version: string };
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, { type: string; scheme: string }> };
  security: unknown[];
  paths: Record<string, Record<string, Operation>>;
}

describe('OpenAPI document and docs page', () => {
  let h: ApiHarness;
  let doc: OpenApi;
  before(async () => {
    h = await startHarness();
    const res = await h.api.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    doc = res.json<OpenApi>();
  });
  after(async () => {
    await h.close();
  });

  const operations = (): [string, Operation][] =>
    Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops).map(([m, op]): [string, Operation] => [`${m.toUpperCase()} ${p}`, op]),
    );

  it('is OpenAPI 3.1 with a bearer scheme required by default', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.deepEqual(doc.components.securitySchemes.bearer, {
      type: 'http',
      scheme: 'bearer',
      description: 'scs_... API token',
    });
    assert.deepEqual(doc.security, [{ bearer: [] }]);
  });

  it('gives every operation a summary, a tag, its permission and roles, and problem+json errors', () => {
    for (const [name, op] of operations()) {
      assert.ok(op.summary && op.tags?.length, `${name}: summary and tag`);
      const permission = op['x-permission'];
      assert.ok(permission, `${name}: x-permission`);
      assert.ok(op.responses['500']?.content?.['application/problem+json'], `${name}: 500 problem`);
      if (permission === 'public') {
        assert.deepEqual(op.security, [], `${name}: public routes need no token`);
        continue;
      }
      assert.ok(op['x-roles']?.includes('admin'), `${name}: x-roles`);
      for (const status of ['401', '403']) {
        const schema = op.responses[status]?.content?.['application/problem+json']?.schema;
        assert.deepEqual(schema, { $ref: '#/components/schemas/Problem' }, `${name}: ${status}`);
      }
    }
  });

  it('resolves every $ref to a component, and names components after their schemas', () => {
    const refs = new Set<string>();
    JSON.stringify(doc, (key, value: unknown) => {
      if (key === '$ref' && typeof value === 'string') refs.add(value);
      return value;
    });
    assert.ok(refs.size > 5);
    for (const r of refs) {
      const name = r.replace('#/components/schemas/', '');
      assert.ok(r.startsWith('#/components/schemas/') && name in doc.components.schemas, `unresolved ${r}`);
    }
    for (const name of [
      'Problem',
      'Psk',
      'PskCounts',
      'Batch',
      'AuditEntry',
      'Token',
      'Task',
      'Profile',
      'Device',
      'Job',
    ]) {
      assert.ok(name in doc.components.schemas, name);
    }
  });

  it('marks query parameters with defaults as optional', () => {
    const list = doc.paths['/api/v1/psks']?.get;
    assert.ok(list);
    const limit = list.parameters?.find((p) => p.name === 'limit');
    assert.equal(limit?.required, false);
  });

  it('serves swagger-ui from the server itself, with a policy that allows no other host', async () => {
    const page = await h.api.inject({ method: 'GET', url: '/docs/' });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /https:|validator|upgrade-insecure-requests/);
    assert.doesNotMatch(page.body, /(src|href)=["']?(https?:)?\/\//);
    const assets = [...page.body.matchAll(/(?:src|href)="\.\/([^"]+)"/g)].map((m) => m[1] ?? '');
    assert.ok(assets.includes('static/swagger-ui-bundle.js'), assets.join(' '));
    for (const asset of assets) {
      const res = await h.api.inject({ method: 'GET', url: `/docs/${asset}` });
      assert.equal(res.statusCode, 200, asset);
    }
    const init = await h.api.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
    assert.match(init.body, /validatorUrl: null/);
    // The document comes from this server; URLs elsewhere in the file are only in comments.
    assert.match(init.body, /url: resolveUrl\('\.\/json'\)/);
    assert.equal((await h.api.inject({ method: 'GET', url: '/docs/json' })).statusCode, 200);
    assert.equal((await h.api.inject({ method: 'GET', url: '/docs' })).statusCode, 200);
  });
});
