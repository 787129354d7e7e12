/**
 * The UUID text form of protocol.md §1c. A device sends its SMBIOS UUID as 16 raw bytes whose
 * first three fields are little-endian, so bytes b0..b15 print as
 * `b3b2b1b0-b5b4-b7b6-b8b9-b10b11b12b13b14b15` (lowercase hex).
 */
export const UUID_BYTES = 16;

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Byte positions in text order: the first three groups byte-reversed, the rest as is. */
const TEXT_ORDER = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15] as const;

/** Formats 16 bytes starting at `offset` of `bytes`. */
export function formatUuid(bytes: Uint8Array, offset = 0): string {
  if (bytes.length - offset < UUID_BYTES) throw new RangeError(`a UUID needs ${UUID_BYTES} bytes`);
  let out = '';
  for (let i = 0; i < UUID_BYTES; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) out += '-';
    out += HEX[bytes[offset + (TEXT_ORDER[i] as number)] as number] as string;
  }
  return out;
}

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The inverse of formatUuid: text (any case) back to the 16 bytes a device sends. */
export function parseUuid(text: string): Buffer {
  const trimmed = text.trim();
  if (!UUID_TEXT.test(trimmed)) throw new RangeError(`"${trimmed}" is not a UUID (8-4-4-4-12 hex digits)`);
  const hex = trimmed.replaceAll('-', '');
  const out = Buffer.alloc(UUID_BYTES);
  for (let i = 0; i < UUID_BYTES; i++) {
    out[TEXT_ORDER[i] as number] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  }
  return out;
}
