/**
 * Intel's check character (protocol.md §2): the sum of the ASCII codes of the characters,
 * mod 36, written as 0-9 then A-Z. The PID's 8th character checks its first 7; each 4-character
 * group of the PPS ends with the check of its first 3.
 */
export const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

export function checkChar(chars: string): string {
  let sum = 0;
  for (let i = 0; i < chars.length; i++) sum += chars.charCodeAt(i);
  return ALPHABET[sum % 36] as string;
}

export function isSymbol(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a);
}
