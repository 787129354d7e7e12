import { randomInt } from 'node:crypto';

const UPPER = 'ABCDEFGHJKLMNPQRSTUVWXYZ';
const LOWER = 'abcdefghijkmnopqrstuvwxyz';
const DIGITS = '23456789';
/** Specials MEBx and Digest both carry; no `:` `,` `"` (refused by MEBx) and nothing a shell or XML escapes. */
const SPECIAL = '!#%+-.=?@^_~';
const ALL = UPPER + LOWER + DIGITS + SPECIAL;

/** One character of `set`, uniformly (a module function: no closure per password, see job-run.ts JobClients). */
function pick(set: string): string {
  return set[randomInt(set.length)] as string;
}

/**
 * A strong AMT password (protocol.md §6 step 3: 8-32 characters with an uppercase letter, a
 * lowercase letter, a digit and a special character), from node:crypto. 16 characters of a
 * 69-symbol alphabet: about 97 bits.
 */
export function generateAmtPassword(length = 16): string {
  // `_` does not count as special for MEBx: the guaranteed special comes from the others.
  const chars = [pick(UPPER), pick(LOWER), pick(DIGITS), pick(SPECIAL.replace('_', ''))];
  while (chars.length < length) chars.push(pick(ALL));
  // Fisher-Yates, so the guaranteed classes are not always at the front.
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j] as string, chars[i] as string];
  }
  return chars.join('');
}
