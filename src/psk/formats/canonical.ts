/**
 * Fast checks for values that are already in canonical form (uppercase, no dashes), for codecs
 * that handle a million pairs: a plain loop over character codes instead of the general parsers.
 * They accept exactly what parsePid/parsePps accept in canonical form (a property test holds them
 * to it); on anything else the caller falls back to parsePid/parsePps, which names the fault.
 */
import { ALPHABET, isSymbol } from '../checksum.ts';
import { parsePid, PID_LENGTH, type Pid } from '../pid.ts';
import { parsePps, PPS_LENGTH, type Pps } from '../pps.ts';

/** protocol.md §2: the check character is ALPHABET[(sum of the ASCII codes) mod 36]. */
function checks(s: string, from: number, to: number): boolean {
  let sum = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!isSymbol(c)) return false;
    sum += c;
  }
  const check = s.charCodeAt(to);
  return isSymbol(check) && ALPHABET.charCodeAt(sum % 36) === check;
}

export function canonicalPid(s: string): Pid | undefined {
  return s.length === PID_LENGTH && checks(s, 0, 7) ? (s as Pid) : undefined;
}

export function canonicalPps(s: string): Pps | undefined {
  if (s.length !== PPS_LENGTH) return undefined;
  for (let g = 0; g < PPS_LENGTH; g += 4) if (!checks(s, g, g + 3)) return undefined;
  return s as Pps;
}

/** checks() over bytes: the same rule for a PPS held in a buffer (never turned into a string). */
function checksBytes(b: Buffer, from: number, to: number): boolean {
  let sum = 0;
  for (let i = from; i < to; i++) {
    const c = b[i] as number;
    if (!isSymbol(c)) return false;
    sum += c;
  }
  const check = b[to] as number;
  return isSymbol(check) && ALPHABET.charCodeAt(sum % 36) === check;
}

/** Whether `b[at .. at + 32)` is a PPS in canonical form (ASCII), as canonicalPps would accept it. */
export function isCanonicalPpsAt(b: Buffer, at: number): boolean {
  if (at < 0 || at + PPS_LENGTH > b.length) return false;
  for (let g = at; g < at + PPS_LENGTH; g += 4) if (!checksBytes(b, g, g + 3)) return false;
  return true;
}

/** canonicalPid, else parsePid (which accepts other spellings or throws SCS_PID_INVALID). */
export function readPid(s: string): Pid {
  return canonicalPid(s) ?? parsePid(s);
}

/** canonicalPps, else parsePps (which accepts other spellings or throws SCS_PPS_INVALID, never echoing). */
export function readPps(s: string): Pps {
  return canonicalPps(s) ?? parsePps(s);
}
