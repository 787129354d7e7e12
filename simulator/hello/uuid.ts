import { ScsError } from '../../src/errors.ts';

/**
 * UUID text <-> the 16 bytes a device puts on the wire, in SMBIOS order (protocol.md §1c):
 * bytes b0..b15 print as `b3b2b1b0-b5b4-b7b6-b8b9-b10..b15`, i.e. the first three fields are
 * stored little-endian. The simulator keeps its own codec (the server has its own decoder) so a
 * byte-order slip in one cannot hide the same slip in the other.
 */
export const UUID_BYTES = 16;

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Index into the text's 32 hex digits (dashes removed) of wire byte i. */
const TEXT_POSITION_OF_BYTE = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15] as const;

/** Canonical text (lowercase, dashed) of a UUID; accepts any case and surrounding whitespace. */
export function normalizeUuid(text: string): string {
  const t = text.trim().toLowerCase();
  if (!UUID_TEXT.test(t)) {
    throw new ScsError('SCS_SIM_CONFIG_INVALID', `UUID "${text.trim()}" is not 8-4-4-4-12 hexadecimal digits`);
  }
  return t;
}

/** Text form -> the 16 wire bytes (SMBIOS order). */
export function uuidToBytes(text: string): Buffer {
  const hex = normalizeUuid(text).replaceAll('-', '');
  const out = Buffer.alloc(UUID_BYTES);
  for (let i = 0; i < UUID_BYTES; i++) {
    const at = TEXT_POSITION_OF_BYTE[i] as number;
    out[i] = parseInt(hex.slice(at * 2, at * 2 + 2), 16);
  }
  return out;
}

/** The 16 wire bytes (SMBIOS order) -> lowercase dashed text. */
export function uuidFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== UUID_BYTES) {
    throw new ScsError('SCS_SIM_CONFIG_INVALID', `a UUID is ${UUID_BYTES} bytes, got ${bytes.length}`);
  }
  const textBytes = new Array<number>(UUID_BYTES);
  for (let i = 0; i < UUID_BYTES; i++) textBytes[TEXT_POSITION_OF_BYTE[i] as number] = bytes[i] as number;
  const hex = textBytes.map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
