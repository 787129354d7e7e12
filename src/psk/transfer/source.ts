import type { Readable } from 'node:stream';
import { isScsError, ScsError } from '../../errors.ts';
import { DETECT_SAMPLE_BYTES, detectFormat, type PskFileFormat } from '../formats/detect.ts';

/** What an import reads: the whole file in memory, a Readable (file, HTTP request) or any byte iterable. */
export type ImportSource = Buffer | Uint8Array | Readable | AsyncIterable<Uint8Array>;

/**
 * **(choice)** Pieces handed to a decoder are at most 256 KiB: the bundle decoder returns the
 * records of every chunk a push completes, so this bounds what one push can return.
 */
const PIECE = 256 * 1024;

/** The source's own read errors (EACCES, EISDIR, a dropped upload) become SCS_FILE_IO. */
async function* readable<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (e) {
    if (isScsError(e)) throw e;
    const code = (e as { code?: unknown } | undefined)?.code;
    throw new ScsError('SCS_FILE_IO', `cannot read the import source${typeof code === 'string' ? ` (${code})` : ''}`, {
      cause: e,
    });
  }
}

async function* pieces(source: ImportSource): AsyncGenerator<Buffer> {
  if (source instanceof Uint8Array) {
    const b = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    for (let i = 0; i < b.length; i += PIECE) yield b.subarray(i, i + PIECE);
    return;
  }
  for await (const chunk of readable(source as AsyncIterable<Uint8Array | string>)) {
    const b =
      typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let i = 0; i < b.length; i += PIECE) yield b.subarray(i, i + PIECE);
  }
}

/** A source whose first bytes were read to detect the format; `chunks` yields every byte once. */
export interface PeekedSource {
  readonly format: PskFileFormat;
  readonly chunks: AsyncGenerator<Buffer>;
}

/** Reads up to DETECT_SAMPLE_BYTES, detects the format (SCS_FORMAT_UNKNOWN), and gives the rest back. */
export async function peekFormat(source: ImportSource): Promise<PeekedSource> {
  const it = pieces(source);
  const held: Buffer[] = [];
  let size = 0;
  let ended = false;
  while (size < DETECT_SAMPLE_BYTES) {
    const next = await it.next();
    if (next.done === true) {
      ended = true;
      break;
    }
    held.push(next.value);
    size += next.value.length;
  }
  const sample = Buffer.concat(held).subarray(0, DETECT_SAMPLE_BYTES);
  let format: PskFileFormat;
  try {
    format = detectFormat(sample);
  } catch (e) {
    await it.return(undefined);
    throw e;
  }
  async function* all(): AsyncGenerator<Buffer> {
    try {
      yield* held;
      if (!ended) yield* it;
    } finally {
      await it.return(undefined);
    }
  }
  return { format, chunks: all() };
}

/** Reads everything into one buffer, refusing more than `max` bytes. */
export async function readAll(chunks: AsyncIterable<Buffer>, max: number, tooLarge: () => Error): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const c of chunks) {
    size += c.length;
    if (size > max) throw tooLarge();
    parts.push(c);
  }
  return Buffer.concat(parts, size);
}
