/**
 * The DER (X.690) reading PKCS#12 needs: one element at a time, definite lengths only (what
 * OpenSSL, Windows and Java write for PFX files; BER indefinite lengths are refused clearly).
 */
export interface Tlv {
  readonly tag: number;
  /** The content octets. */
  readonly content: Buffer;
  /** The whole element, header included. */
  readonly raw: Buffer;
}

export class DerError extends Error {
  override readonly name = 'DerError';
}

export function readTlv(buf: Buffer, offset = 0): Tlv {
  const tag = buf[offset];
  const first = buf[offset + 1];
  if (tag === undefined || first === undefined) throw new DerError('truncated DER header');
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte DER tags are not supported');
  let len = first;
  let header = 2;
  if (first === 0x80) throw new DerError('BER indefinite lengths are not supported (re-export the file)');
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n > 4) throw new DerError('DER length too large');
    len = 0;
    for (let i = 0; i < n; i++) {
      const b = buf[offset + 2 + i];
      if (b === undefined) throw new DerError('truncated DER length');
      len = len * 256 + b;
    }
    header += n;
  }
  const end = offset + header + len;
  if (end > buf.length) throw new DerError('a DER element runs past the end of its container');
  return { tag, raw: buf.subarray(offset, end), content: buf.subarray(offset + header, end) };
}

/** The elements inside a constructed element's content. */
export function children(content: Buffer): Tlv[] {
  const out: Tlv[] = [];
  let at = 0;
  while (at < content.length) {
    const t = readTlv(content, at);
    out.push(t);
    at += t.raw.length;
  }
  return out;
}

export function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (t === undefined || t.tag !== tag) {
    throw new DerError(
      `${what}: expected tag 0x${tag.toString(16)}, got ${t === undefined ? 'nothing' : `0x${t.tag.toString(16)}`}`,
    );
  }
  return t;
}

/** Dotted text of an OBJECT IDENTIFIER's content. */
export function oid(t: Tlv | undefined, what: string): string {
  const c = expect(t, 0x06, what).content;
  const first = c[0];
  if (first === undefined) throw new DerError(`${what}: empty OID`);
  const parts = [Math.floor(first / 40), first % 40];
  let v = 0;
  for (let i = 1; i < c.length; i++) {
    const b = c[i] as number;
    v = v * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** A non-negative INTEGER small enough for a number (iteration counts, versions). */
export function smallInt(t: Tlv | undefined, what: string): number {
  const c = expect(t, 0x02, what).content;
  if (c.length === 0 || c.length > 6) throw new DerError(`${what}: integer out of range`);
  let v = 0;
  for (const b of c) v = v * 256 + b;
  return v;
}

/** OCTET STRING content, primitive (0x04) or constructed (0x24, segments joined). */
export function octets(t: Tlv | undefined, what: string): Buffer {
  if (t?.tag === 0x24) return Buffer.concat(children(t.content).map((c) => octets(c, what)));
  return expect(t, 0x04, what).content;
}
