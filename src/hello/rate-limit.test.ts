import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHelloGate, TokenBuckets } from './rate-limit.ts';

/** A clock the test moves by hand. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 0;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('token buckets', () => {
  it('lets a burst through, refuses the next, and refills at the configured rate', () => {
    const c = clock();
    const b = new TokenBuckets({ burst: 3, perMinute: 60 }, 100, c.now);
    assert.deepEqual(
      [1, 2, 3, 4].map(() => b.take('a').ok),
      [true, true, true, false],
    );
    assert.equal(b.take('a').dropped, 2);
    c.advance(999);
    assert.equal(b.take('a').ok, false);
    c.advance(1);
    assert.equal(b.take('a').ok, true, 'one token per second at 60/min');
    assert.equal(b.take('b').ok, true, 'another key has its own bucket');
  });

  it('never tracks more than maxTracked keys: the least recently used are forgotten, the last maxTracked / 2 never', () => {
    const c = clock();
    const b = new TokenBuckets({ burst: 1, perMinute: 1 }, 4, c.now);
    for (const k of ['a', 'b', 'c']) assert.equal(b.take(k).ok, true);
    // a is used again (still in debt), so b is now the least recently used.
    assert.equal(b.take('a').ok, false);
    for (const k of ['d', 'e']) b.take(k);
    assert.ok(b.size <= 4, `${b.size} keys`);
    // b, the least recently used, was forgotten: it starts afresh.
    assert.equal(b.take('b').ok, true);
    // e and d are the two most recent: both remembered, both in debt.
    assert.equal(b.take('e').ok, false);
    assert.equal(b.take('d').ok, false);
    for (let i = 0; i < 10_000; i++) {
      b.take(`k${i}`);
      assert.ok(b.size <= 4);
    }
    // The last two keys taken are always remembered.
    assert.equal(b.take('k9999').ok, false);
    assert.equal(b.take('k9998').ok, false);
  });

  it('under a flood of new keys keeps between maxTracked / 2 and maxTracked keys', () => {
    const b = new TokenBuckets({ burst: 1, perMinute: 1 }, 65_536);
    for (let i = 0; i < 200_000; i++) b.take(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    assert.ok(b.size <= 65_536);
    assert.ok(b.size >= 32_768, `${b.size} keys: the last half-table of keys are remembered`);
  });
});

describe('hello gate', () => {
  const options = {
    address: { burst: 2, perMinute: 60 },
    pid: { burst: 3, perMinute: 60 },
    maxTracked: 1000,
    maxPending: 4,
  };

  it('limits one source address, marks only the first refusal of an episode for the audit', () => {
    const c = clock();
    const gate = createHelloGate({ ...options, now: c.now });
    const results = [0, 1, 2, 3].map((i) => gate.admit(`PID0000${i}`, '10.0.0.1'));
    assert.deepEqual(
      results.map((r) => (r.ok ? 'ok' : `${r.by}:${String(r.first)}`)),
      ['ok', 'ok', 'address:true', 'address:false'],
    );
    for (const r of results) if (r.ok) r.release();
    c.advance(1000);
    assert.equal(gate.admit('PID00009', '10.0.0.1').ok, true);
    const again = [gate.admit('PID00010', '10.0.0.1'), gate.admit('PID00011', '10.0.0.1')];
    assert.deepEqual(
      again.map((r) => (r.ok ? 'ok' : `${r.by}:${String(r.first)}`)),
      ['address:true', 'address:false'],
      'a new episode after a hello got through is audited again',
    );
  });

  it('limits one PID across many addresses', () => {
    const gate = createHelloGate(options);
    const results = ['a', 'b', 'c', 'd'].map((a) => gate.admit('ABCD1234', a));
    assert.deepEqual(
      results.map((r) => (r.ok ? 'ok' : r.by)),
      ['ok', 'ok', 'ok', 'pid'],
    );
    assert.equal(gate.admit(undefined, 'e').ok, true, 'a version 3 hello (no PID) is limited by address only');
  });

  it('holds at most maxPending hellos in flight; a release makes room', () => {
    const gate = createHelloGate(options);
    const held = ['a', 'b', 'c', 'd'].map((a, i) => gate.admit(`PID0000${i}`, a));
    assert.ok(held.every((r) => r.ok));
    const over = gate.admit('PID00005', 'e');
    assert.deepEqual(over.ok ? 'ok' : [over.by, over.first], ['pending', true]);
    assert.equal(gate.stats().pending, 4);
    const first = held[0];
    if (first?.ok === true) {
      first.release();
      first.release();
    }
    assert.equal(gate.stats().pending, 3, 'release is idempotent');
    assert.equal(gate.admit('PID00006', 'f').ok, true);
  });
});
