import { ScsError } from '../../errors.ts';

/**
 * An incremental HTTP/1.1 response reader (RFC 9112): bytes in, one response out. It takes
 * whatever pieces the socket delivers, bounds the header block and the body, and understands
 * Content-Length, chunked transfer coding (AMT's usual reply, §5) and read-until-close.
 */

export interface HttpResponse {
  readonly status: number;
  readonly reason: string;
  /** Lowercased names; every occurrence kept, in order. */
  readonly headers: Readonly<Record<string, readonly string[]>>;
  readonly body: Buffer;
  /** False when the server said `Connection: close` (or spoke HTTP/1.0 without keep-alive). */
  readonly keepAlive: boolean;
}

export function header(response: Pick<HttpResponse, 'headers'>, name: string): string | undefined {
  return response.headers[name.toLowerCase()]?.join(', ');
}

export const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Longest chunk-size, chunk-end or trailer line. */
const MAX_LINE_BYTES = 1024;

function broken(why: string, details: Record<string, string | number> = {}): ScsError {
  return new ScsError('SCS_AMT_HTTP', `broken HTTP response: ${why}`, { details });
}

type Phase = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'until-close' | 'done';

export class HttpResponseParser {
  readonly #maxHeader: number;
  readonly #maxBody: number;
  /** Unread bytes: a view into `#space` (or into the last pushed chunk). */
  #pending: Buffer = Buffer.alloc(0);
  /** Room the pending bytes grow into, doubled when full, so a peer sending one byte at a time costs O(n), not O(n^2). */
  #space: Buffer | undefined;
  /** Leading bytes of `#pending` already searched for a line end (not searched again). */
  #scanned = 0;
  #trailerBytes = 0;
  #phase: Phase = 'head';
  #status = 0;
  #reason = '';
  #headers: Record<string, string[]> = {};
  #keepAlive = true;
  #remaining = 0;
  #body: Buffer[] = [];
  #bodyBytes = 0;
  #result: HttpResponse | undefined;

  constructor(opts: { maxHeaderBytes?: number; maxBodyBytes?: number } = {}) {
    this.#maxHeader = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
    this.#maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  }

  /** Bytes received after the response ended (a well-behaved server sends none). */
  get extraBytes(): number {
    return this.#phase === 'done' ? this.#pending.length : 0;
  }

  /** Feeds bytes; returns the response once it is complete. */
  push(chunk: Buffer): HttpResponse | undefined {
    if (this.#result) return this.#result;
    this.#append(chunk);
    this.#run();
    return this.#result;
  }

  /** The connection closed: completes a read-until-close body, else the response is cut short. */
  end(): HttpResponse {
    if (this.#result) return this.#result;
    if (this.#phase === 'until-close') return this.#finish();
    throw new ScsError('SCS_AMT_CONNECTION_LOST', 'the connection closed before the whole reply arrived', {
      details: { phase: this.#phase, bodyBytes: this.#bodyBytes },
    });
  }

  #run(): void {
    for (;;) {
      switch (this.#phase) {
        case 'head':
          if (!this.#head()) return;
          break;
        case 'length': {
          const take = Math.min(this.#remaining, this.#pending.length);
          if (take > 0) this.#addBody(this.#take(take));
          this.#remaining -= take;
          if (this.#remaining > 0) return;
          this.#finish();
          return;
        }
        case 'chunk-size': {
          const line = this.#line();
          if (line === undefined) return;
          const size = /^([0-9a-fA-F]{1,8})[ \t]*(;.*)?$/.exec(line);
          if (!size?.[1]) throw broken(`bad chunk size line "${line.slice(0, 40)}"`);
          this.#remaining = parseInt(size[1], 16);
          this.#phase = this.#remaining === 0 ? 'trailers' : 'chunk-data';
          break;
        }
        case 'chunk-data': {
          const take = Math.min(this.#remaining, this.#pending.length);
          if (take > 0) this.#addBody(this.#take(take));
          this.#remaining -= take;
          if (this.#remaining > 0) return;
          this.#phase = 'chunk-crlf';
          break;
        }
        case 'chunk-crlf': {
          const line = this.#line();
          if (line === undefined) return;
          if (line !== '') throw broken('chunk data not followed by CRLF');
          this.#phase = 'chunk-size';
          break;
        }
        case 'trailers': {
          const line = this.#line();
          if (line === undefined) return;
          if (line === '') {
            this.#finish();
            return;
          }
          // Trailers are read and dropped; their total is bounded like the header block.
          this.#trailerBytes += line.length + 2;
          if (this.#trailerBytes > this.#maxHeader) throw broken(`trailers over ${this.#maxHeader} bytes`);
          break;
        }
        case 'until-close': {
          if (this.#pending.length > 0) this.#addBody(this.#take(this.#pending.length));
          return;
        }
        case 'done':
          return;
      }
    }
  }

  #append(chunk: Buffer): void {
    const p = this.#pending;
    if (p.length === 0) {
      this.#pending = chunk;
      return;
    }
    const space = this.#space;
    const end = p.byteOffset + p.length;
    if (space !== undefined && p.buffer === space.buffer && end + chunk.length <= space.byteOffset + space.length) {
      // Room after the pending bytes: copy only the new chunk. Bytes already taken (body parts
      // still referenced) lie before `p` and are never written over.
      chunk.copy(space, end - space.byteOffset);
      this.#pending = space.subarray(p.byteOffset - space.byteOffset, end - space.byteOffset + chunk.length);
      return;
    }
    const grown = Buffer.allocUnsafe(Math.max(4096, 2 * (p.length + chunk.length)));
    p.copy(grown, 0);
    chunk.copy(grown, p.length);
    this.#space = grown;
    this.#pending = grown.subarray(0, p.length + chunk.length);
  }

  /** Where `pattern` starts in the pending bytes, searching only what was not searched before. */
  #find(pattern: string): number {
    const at = this.#pending.indexOf(pattern, Math.max(0, this.#scanned - (pattern.length - 1)), 'latin1');
    this.#scanned = at < 0 ? this.#pending.length : at;
    return at;
  }

  /** Reads the status line and headers; false until the blank line has arrived. */
  #head(): boolean {
    const end = this.#find('\r\n\r\n');
    if (end < 0) {
      if (this.#pending.length > this.#maxHeader) throw broken(`header block over ${this.#maxHeader} bytes`);
      return false;
    }
    if (end > this.#maxHeader) throw broken(`header block over ${this.#maxHeader} bytes`);
    const lines = this.#take(end + 4)
      .toString('latin1', 0, end)
      .split('\r\n');
    const statusLine = lines[0] ?? '';
    const m = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(statusLine);
    if (!m) throw broken(`bad status line "${statusLine.slice(0, 60)}"`);
    const minor = m[1];
    const status = Number(m[2]);
    const headers: Record<string, string[]> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) throw broken(`bad header line "${line.slice(0, 60)}"`);
      const name = line.slice(0, colon).trim().toLowerCase();
      (headers[name] ??= []).push(line.slice(colon + 1).trim());
    }
    // 1xx responses are interim (RFC 9110 §15.2): skip them and read the real one.
    if (status >= 100 && status < 200) return true;
    this.#status = status;
    this.#reason = m[3] ?? '';
    this.#headers = headers;
    const connection = (headers.connection ?? []).join(',').toLowerCase();
    this.#keepAlive = minor === '1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
    const te = (headers['transfer-encoding'] ?? []).join(',').toLowerCase();
    const cl = headers['content-length'];
    if (status === 204 || status === 304) {
      this.#finish();
    } else if (te !== '') {
      // RFC 9112 §6.1: chunked must be the final coding; nothing else is used by AMT.
      if (!/(^|,)\s*chunked\s*$/.test(te)) throw broken(`unsupported Transfer-Encoding "${te}"`);
      this.#phase = 'chunk-size';
    } else if (cl !== undefined) {
      const distinct = new Set(cl.flatMap((v) => v.split(',').map((x) => x.trim())));
      const [only] = distinct;
      if (distinct.size !== 1 || only === undefined || !/^\d{1,10}$/.test(only)) {
        throw broken(`bad Content-Length "${cl.join(',')}"`);
      }
      this.#remaining = Number(only);
      if (this.#remaining > this.#maxBody) throw broken(`body of ${this.#remaining} bytes is over ${this.#maxBody}`);
      this.#phase = 'length';
    } else {
      this.#keepAlive = false;
      this.#phase = 'until-close';
    }
    return true;
  }

  /** One CRLF-terminated line (without the CRLF), or undefined if it has not all arrived. */
  #line(): string | undefined {
    const end = this.#find('\r\n');
    // The bound holds however the bytes were cut: a long line is refused whether or not its end has arrived.
    if ((end < 0 ? this.#pending.length : end) > MAX_LINE_BYTES) throw broken('chunk line too long');
    if (end < 0) return undefined;
    const line = this.#take(end + 2).toString('latin1', 0, end);
    return line;
  }

  #take(n: number): Buffer {
    const out = this.#pending.subarray(0, n);
    this.#pending = this.#pending.subarray(n);
    this.#scanned = 0;
    return out;
  }

  #addBody(part: Buffer): void {
    this.#bodyBytes += part.length;
    if (this.#bodyBytes > this.#maxBody) throw broken(`body over ${this.#maxBody} bytes`);
    this.#body.push(part);
  }

  #finish(): HttpResponse {
    this.#phase = 'done';
    return (this.#result = {
      status: this.#status,
      reason: this.#reason,
      headers: this.#headers,
      body: this.#body.length === 1 ? (this.#body[0] as Buffer) : Buffer.concat(this.#body),
      keepAlive: this.#keepAlive,
    });
  }
}
