import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isScsError } from '../../errors.ts';
import { ALPHABET, checkChar } from '../checksum.ts';
import { isValidPid, parsePid } from '../pid.ts';
import { isValidPps, parsePps } from '../pps.ts';
import { canonicalPid, canonicalPps, readPid, readPps } from './canonical.ts';

const symbol = fc.constantFrom(...ALPHABET.split(''));
const anyChar = fc.constantFrom(...`${ALPHABET}az-_ \u00e9`.split(''));
/** Canonical-looking strings whose check characters are right about half the time. */
const pidLike = fc.tuple(fc.array(symbol, { minLength: 7, maxLength: 7 }), fc.boolean(), symbol).map(([a, ok, c]) => {
  const body = a.join('');
  return body + (ok ? checkChar(body) : c);
});
const ppsLike = fc
  .array(fc.tuple(fc.array(symbol, { minLength: 3, maxLength: 3 }), fc.nat(9), symbol), { minLength: 8, maxLength: 8 })
  .map((groups) => groups.map(([g, k, c]) => g.join('') + (k > 0 ? checkChar(g.join('')) : c)).join(''));

describe('canonical fast checks', () => {
  it('accept a canonical PID exactly when parsePid does, returning the same value', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          pidLike,
          fc.array(anyChar, { maxLength: 10 }).map((a) => a.join('')),
        ),
        (s) => {
          const fast = canonicalPid(s);
          if (fast !== undefined) assert.equal(parsePid(s), fast);
          if (/^[0-9A-Z]{8}$/.test(s)) assert.equal(fast !== undefined, isValidPid(s));
          assert.equal(isValidPid(s) ? readPid(s) : undefined, isValidPid(s) ? parsePid(s) : undefined);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('accept a canonical PPS exactly when parsePps does, returning the same value', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          ppsLike,
          fc.array(anyChar, { minLength: 30, maxLength: 40 }).map((a) => a.join('')),
        ),
        (s) => {
          const fast = canonicalPps(s);
          if (fast !== undefined) assert.equal(parsePps(s), fast);
          if (/^[0-9A-Z]{32}$/.test(s)) assert.equal(fast !== undefined, isValidPps(s));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('fall back to the parsers for other spellings and for their error messages', () => {
    const pid = `ABCDEFG${checkChar('ABCDEFG')}`;
    assert.equal(readPid(` ${pid.slice(0, 4).toLowerCase()}-${pid.slice(4)} `), pid);
    assert.throws(
      () => readPps('_'.repeat(32)),
      (e) => isScsError(e, 'SCS_PPS_INVALID') && /position 1/.test(e.message),
    );
  });
});
