import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { chainHash, GENESIS_HASH, type ChainEntry } from './audit-chain.ts';

/** The formula of docs/psk-database.md, "Audit log", written out independently of audit-chain.ts. */
function documented(prev: string, e: ChainEntry): string {
  const detail = Object.entries(e.detail).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const canonical = JSON.stringify([1, e.seq, e.at, e.actor, e.action, e.pids, detail]);
  return createHash('sha256').update(Buffer.from(prev, 'hex')).update(canonical, 'utf8').digest('hex');
}

const entry: ChainEntry = {
  seq: 7,
  at: '2026-11-29T02:10:00.123Z',
  actor: 'server',
  action: 'job.step',
  pids: ['ABCDEFGH'],
  detail: { uuid: '00000000-0000-4000-8000-000000000001', job: 12, step: 'escrow', ms: 3, ok: true, note: 'é ü 🔑' },
};

describe('audit chain hash', () => {
  it('is SHA-256 of the previous hash bytes followed by the canonical entry, along a chain', () => {
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= 5; seq++) {
      const e = { ...entry, seq, detail: { ...entry.detail, job: seq } };
      const h = chainHash(prev, e);
      assert.equal(h, documented(prev, e));
      assert.match(h, /^[0-9a-f]{64}$/);
      prev = h;
    }
  });

  it('hashes a previous hash that is not 64 hex digits exactly as the formula does', () => {
    for (const prev of ['', 'ab', 'zz'.repeat(32), `${'0'.repeat(62)}zz`, 'A'.repeat(64), '0'.repeat(66)]) {
      assert.equal(chainHash(prev, entry), documented(prev, entry), `prev ${JSON.stringify(prev)}`);
    }
  });
});
