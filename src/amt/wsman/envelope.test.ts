import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isScsError } from '../../errors.ts';
import { xmlEscape } from './envelope.ts';

/** The escaping every value of a request goes through, written the slow, obvious way. */
function reference(value: string): string {
  for (const ch of value) {
    const cp = ch.codePointAt(0) ?? 0;
    if ((cp < 0x20 && cp !== 0x09 && cp !== 0x0a && cp !== 0x0d) || cp === 0xfffe || cp === 0xffff)
      throw new Error('bad');
  }
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

describe('xmlEscape', () => {
  it('escapes the five XML characters and leaves plain values as they are', () => {
    assert.equal(xmlEscape(`a&b<c>d"e'f`), 'a&amp;b&lt;c&gt;d&quot;e&apos;f');
    assert.equal(
      xmlEscape('http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings'),
      'http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings',
    );
    assert.equal(xmlEscape('tab\there\r\nok é ✓'), 'tab\there\r\nok é ✓');
  });

  it('refuses characters XML cannot carry, naming the character and not the value', () => {
    for (const [value, code] of [
      ['pass\u0001word', '0001'],
      ['\u001f', '001F'],
      ['x\ufffe', 'FFFE'],
      ['&\uffff', 'FFFF'],
    ] as const) {
      assert.throws(
        () => xmlEscape(value),
        (e) => isScsError(e, 'SCS_PROFILE_INVALID') && e.message.includes(`U+${code}`) && !e.message.includes(value),
      );
    }
  });

  it('agrees with the obvious implementation on random strings', () => {
    const alphabet = fc.constantFrom(
      'a',
      'Z',
      '0',
      ' ',
      '&',
      '<',
      '>',
      '"',
      "'",
      '\t',
      '\n',
      '\r',
      '\u0000',
      '\u0008',
      '\u000b',
      '\u001f',
      'é',
      '\ufffe',
      '\uffff',
      '\ud83d\ude00',
    );
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 20 }), (parts) => {
        const value = parts.join('');
        let expected: string | undefined;
        try {
          expected = reference(value);
        } catch {
          expected = undefined;
        }
        if (expected === undefined)
          assert.throws(
            () => xmlEscape(value),
            (e) => isScsError(e, 'SCS_PROFILE_INVALID'),
          );
        else assert.equal(xmlEscape(value), expected);
      }),
      { numRuns: 2000 },
    );
  });
});
