import { ScsError } from '../errors.ts';
import { checkChar, isSymbol } from './checksum.ts';

/** A Provisioning Passphrase in canonical form: 32 uppercase characters, no dashes. Keep it in a Secret. */
export type Pps = string & { readonly __brand: 'Pps' };

export const PPS_LENGTH = 32;
export const PPS_GROUPS = 8;
/** 8 groups of 4 joined by 7 dashes (protocol.md §2: 39, not the HP guide's 40). */
export const PPS_DISPLAY_LENGTH = 39;

/**
 * Accepts the 39-character dashed form or 32 characters without dashes, any case, trimmed.
 * Errors name the position or group but never echo the passphrase or any of its characters.
 */
export function parsePps(input: string): Pps {
  const trimmed = input.trim().toUpperCase();
  const fail = (why: string): never => {
    throw new ScsError('SCS_PPS_INVALID', `PPS is invalid: ${why}`);
  };
  let raw: string;
  if (trimmed.length === PPS_DISPLAY_LENGTH) {
    for (let g = 1; g < PPS_GROUPS; g++) {
      const at = g * 5 - 1;
      if (trimmed[at] !== '-') fail(`expected a dash at position ${at + 1} (groups of 4 separated by dashes)`);
    }
    raw = trimmed.replaceAll('-', '');
  } else if (trimmed.length === PPS_LENGTH) {
    raw = trimmed;
  } else {
    return fail(`expected 32 characters (or 39 with dashes), got ${trimmed.length}`);
  }
  const dashed = raw !== trimmed;
  for (let i = 0; i < raw.length; i++) {
    if (!isSymbol(raw.charCodeAt(i))) {
      const pos = dashed ? i + Math.floor(i / 4) + 1 : i + 1;
      fail(`character at position ${pos} is not 0-9 or A-Z`);
    }
  }
  for (let g = 0; g < PPS_GROUPS; g++) {
    const group = raw.slice(g * 4, g * 4 + 4);
    if (group[3] !== checkChar(group.slice(0, 3))) fail(`check character of group ${g + 1} is wrong`);
  }
  return raw as Pps;
}

export function isValidPps(input: string): boolean {
  try {
    parsePps(input);
    return true;
  } catch {
    return false;
  }
}

/** Display form: 8 groups of 4 joined by dashes, 39 characters. */
export function formatPps(pps: Pps): string {
  return (pps.match(/.{4}/g) ?? []).join('-');
}
