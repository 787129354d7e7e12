import { ScsError } from '../errors.ts';
import { checkChar, isSymbol } from './checksum.ts';

/** A Provisioning ID in canonical form: 8 uppercase characters, no dash, check character valid. */
export type Pid = string & { readonly __brand: 'Pid' };

export const PID_LENGTH = 8;

/**
 * Accepts `XXXX-XXXX` or `XXXXXXXX`, any case, surrounding whitespace trimmed (protocol.md §2).
 * A PID is not secret, so errors quote it, but only a value of a PID's length: a longer one may
 * be a PPS pasted into the wrong field, and a PPS is never echoed (docs/security.md).
 */
export function parsePid(input: string): Pid {
  const trimmed = input.trim().toUpperCase();
  const fail = (why: string): never => {
    const quoted = trimmed.length <= PID_LENGTH + 1 ? `"${input.trim()}" ` : '';
    throw new ScsError('SCS_PID_INVALID', `PID ${quoted}is invalid: ${why}`);
  };
  let raw = trimmed;
  if (trimmed.length === 9) {
    if (trimmed[4] !== '-') fail('expected XXXX-XXXX (a dash at position 5)');
    raw = trimmed.slice(0, 4) + trimmed.slice(5);
  }
  if (raw.length !== PID_LENGTH) fail(`expected 8 characters (or 9 with a dash), got ${trimmed.length}`);
  for (let i = 0; i < raw.length; i++) {
    if (!isSymbol(raw.charCodeAt(i))) {
      const pos = raw === trimmed || i < 4 ? i + 1 : i + 2;
      fail(`character at position ${pos} ("${trimmed[pos - 1] ?? ''}") is not 0-9 or A-Z`);
    }
  }
  const expected = checkChar(raw.slice(0, 7));
  if (raw[7] !== expected) fail(`check character (last) is ${raw[7] ?? ''}, expected ${expected}`);
  return raw as Pid;
}

export function isValidPid(input: string): boolean {
  try {
    parsePid(input);
    return true;
  } catch {
    return false;
  }
}

/** Display form `XXXX-XXXX`. */
export function formatPid(pid: Pid): string {
  return `${pid.slice(0, 4)}-${pid.slice(4)}`;
}
