import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isScsError } from '../errors.ts';
import { ALPHABET, checkChar } from './checksum.ts';
import { generatePid, generatePps, SymbolSource } from './generate.ts';
import { formatPid, parsePid, type Pid } from './pid.ts';
import { formatPps, parsePps, PPS_DISPLAY_LENGTH, type Pps } from './pps.ts';

const symbol = fc.constantFrom(...ALPHABET.split(''));
const pidArb = fc.array(symbol, { minLength: 7, maxLength: 7 }).map((a) => {
  const body = a.join('');
  return (body + checkChar(body)) as Pid;
});
const ppsArb = fc
  .array(fc.array(symbol, { minLength: 3, maxLength: 3 }), { minLength: 8, maxLength: 8 })
  .map((groups) => groups.map((g) => g.join('') + checkChar(g.join(''))).join('') as Pps);

/**
 * The check is a sum of ASCII codes mod 36, so swapping a character for one whose code differs by
 * exactly 36 ('0'<->'T' ... '6'<->'Z') leaves it unchanged: Intel's scheme cannot see those
 * seven substitutions (docs/architecture.md, "Check characters").
 */
function blindPair(a: string, b: string): boolean {
  return Math.abs(a.charCodeAt(0) - b.charCodeAt(0)) === 36;
}

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(isScsError(e));
    return e.message;
  }
  assert.fail('expected an error');
}

describe('check characters', () => {
  it('computes the sum of ASCII codes mod 36 as 0-9A-Z', () => {
    // 'A'(65)+'B'(66)+'C'(67) = 198; 198 mod 36 = 18 -> 'I'
    assert.equal(checkChar('ABC'), 'I');
    assert.equal(checkChar('000'), ALPHABET[(48 * 3) % 36]);
  });
});

describe('PID', () => {
  it('misses exactly the substitutions whose codes differ by 36', () => {
    const blind = [...ALPHABET].flatMap((a) => [...ALPHABET].filter((b) => blindPair(a, b)).map((b) => a + b));
    assert.deepEqual(
      blind.filter((p) => p[0]! < p[1]!),
      ['0T', '1U', '2V', '3W', '4X', '5Y', '6Z'],
    );
    const check = checkChar('0AB0000');
    assert.equal(check, checkChar('TAB0000'));
    assert.equal(parsePid(`TAB0000${check}`), `TAB0000${check}`);
  });

  it('accepts dashed and undashed input in any case, trimmed', () => {
    const pid = generatePid();
    const dashed = formatPid(pid);
    assert.equal(dashed.length, 9);
    assert.equal(parsePid(`  ${dashed.toLowerCase()} \n`), pid);
    assert.equal(parsePid(pid), pid);
  });

  it('names the length, the position of a bad character and the check character', () => {
    assert.match(
      messageOf(() => parsePid('ABC')),
      /expected 8 characters/,
    );
    assert.match(
      messageOf(() => parsePid('AB_DEFGH')),
      /position 3/,
    );
    assert.match(
      messageOf(() => parsePid('ABCD-E*GH')),
      /position 7/,
    );
    assert.match(
      messageOf(() => parsePid('ABCDEFGH')),
      /check character/,
    );
    assert.match(
      messageOf(() => parsePid('ABCD_EFGH')),
      /dash at position 5/,
    );
  });

  it('round-trips parse(format(pid)) for every valid PID', () => {
    fc.assert(fc.property(pidArb, (pid) => parsePid(formatPid(pid)) === pid && parsePid(pid) === pid));
  });

  it('detects any single-character change except the seven blind pairs of a mod-36 sum', () => {
    fc.assert(
      fc.property(pidArb, fc.nat(7), symbol, (pid, at, replacement) => {
        fc.pre(pid[at] !== replacement);
        fc.pre(at === 7 || !blindPair(pid[at] ?? '', replacement));
        const changed = pid.slice(0, at) + replacement + pid.slice(at + 1);
        assert.throws(
          () => parsePid(changed),
          (e) => isScsError(e, 'SCS_PID_INVALID'),
        );
      }),
    );
  });
});

describe('PPS', () => {
  it('formats as 8 groups of 4, 39 characters, and parses both forms', () => {
    const pps = generatePps();
    const shown = formatPps(pps);
    assert.equal(shown.length, PPS_DISPLAY_LENGTH);
    assert.match(shown, /^([0-9A-Z]{4}-){7}[0-9A-Z]{4}$/);
    assert.equal(parsePps(` ${shown.toLowerCase()} `), pps);
    assert.equal(parsePps(pps), pps);
  });

  it('names the group whose check character is wrong without echoing the passphrase', () => {
    const pps = generatePps();
    const bad = pps.slice(0, 8) + pps.slice(8, 11) + (pps[11] === '0' ? '1' : '0') + pps.slice(12);
    const msg = messageOf(() => parsePps(bad));
    assert.match(msg, /group 3/);
    assert.ok(!msg.includes(bad) && !msg.includes(bad.slice(0, 8)));
    assert.match(
      messageOf(() => parsePps('ABC')),
      /expected 32 characters/,
    );
    assert.match(
      messageOf(() => parsePps(`${formatPps(pps).slice(0, 10)}!${formatPps(pps).slice(11)}`)),
      /position 11/,
    );
  });

  it('round-trips parse(format(pps)) for every valid PPS', () => {
    fc.assert(fc.property(ppsArb, (pps) => parsePps(formatPps(pps)) === pps));
  });

  it('detects any single-character change except the seven blind pairs of a mod-36 sum', () => {
    fc.assert(
      fc.property(ppsArb, fc.nat(31), symbol, (pps, at, replacement) => {
        fc.pre(pps[at] !== replacement);
        fc.pre(at % 4 === 3 || !blindPair(pps[at] ?? '', replacement));
        const changed = pps.slice(0, at) + replacement + pps.slice(at + 1);
        assert.throws(
          () => parsePps(changed),
          (e) => isScsError(e, 'SCS_PPS_INVALID'),
        );
      }),
    );
  });
});

describe('generation', () => {
  it('produces pairs that always validate', () => {
    for (let i = 0; i < 2000; i++) {
      assert.equal(parsePid(generatePid()).length, 8);
      assert.equal(parsePps(generatePps()).length, 32);
    }
  });

  it('is uniform over the 36 symbols (chi-square over 360,000 draws)', () => {
    const source = new SymbolSource();
    const counts = new Map<string, number>();
    const n = 360_000;
    for (let i = 0; i < n; i++) {
      const s = source.next();
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    assert.equal(counts.size, 36);
    const expected = n / 36;
    let chi2 = 0;
    for (const c of counts.values()) chi2 += (c - expected) ** 2 / expected;
    // 35 degrees of freedom: P(chi2 > 75) < 1e-4, so a biased source fails and a fair one passes.
    assert.ok(chi2 < 75, `chi-square ${chi2.toFixed(1)}`);
  });
});
