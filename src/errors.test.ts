import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { ERROR_CODES, ScsError } from './errors.ts';
import { Secret } from './secret.ts';

describe('error catalogue', () => {
  it('documents exactly the codes that src/errors.ts defines', () => {
    const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
    const documented = [...doc.matchAll(/^\|\s*`(SCS_[A-Z0-9_]+)`\s*\|/gm)].map((m) => m[1]);
    assert.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort());
  });

  it('keeps the code and the cause on the error', () => {
    const cause = new Error('low level');
    const e = new ScsError('SCS_FILE_IO', 'cannot write', { cause, details: { path: '/x' } });
    assert.equal(e.code, 'SCS_FILE_IO');
    assert.equal(e.cause, cause);
    assert.deepEqual(e.details, { path: '/x' });
  });
});

describe('Secret', () => {
  it('never prints its value through string, JSON or inspect', () => {
    const s = new Secret('CANARY-PPS');
    const seen = [String(s), `${String(s)}`, JSON.stringify({ s }), inspect(s), inspect({ deep: { s } })].join(' ');
    assert.ok(!seen.includes('CANARY'), seen);
    assert.equal(s.reveal(), 'CANARY-PPS');
  });
});
