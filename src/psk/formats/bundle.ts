/**
 * Encrypted transfer bundle: moves PSK records from one amt-scs to another under a passphrase
 * (docs/formats.md, "Transfer bundle"). scrypt derives the keys; the header is authenticated with
 * HMAC-SHA-256; the records travel in fixed-size AES-256-GCM chunks in the manner of STREAM
 * (Hoang, Reyhanitabar, Rogaway, Vizár: "Online Authenticated-Encryption and its Nonce-Reuse
 * Misuse-Resistance", 2015): a counter nonce per chunk and a "final" flag in the associated
 * data, so truncation, reordering, duplication and any changed bit are caught. Memory stays at
 * one chunk on each side, whatever the number of records.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  randomUUID,
  scrypt,
  scryptSync,
  timingSafeEqual,
} from 'node:crypto';
import { ScsError } from '../../errors.ts';
import { Secret } from '../../secret.ts';
import { PID_LENGTH, type Pid } from '../pid.ts';
import { PPS_LENGTH, type Pps } from '../pps.ts';
import { canonicalPid, canonicalPps, isCanonicalPpsAt, readPid, readPps } from './canonical.ts';
import type { PskPair } from './pair.ts';

/** "\x89SCSBDL\n": a high byte so no text file starts this way, a newline to catch line-end mangling. */
export const BUNDLE_MAGIC = Buffer.from([0x89, 0x53, 0x43, 0x53, 0x42, 0x44, 0x4c, 0x0a]);
export const BUNDLE_FORMAT_VERSION = 1;

export interface ScryptParams {
  /** N = 2^log2N. */
  readonly log2N: number;
  readonly r: number;
  readonly p: number;
}

/**
 * **(choice)** N = 2^17, r = 8, p = 1: OWASP's first scrypt recommendation, 128 MiB and about
 * 0.6 s on the reference machine (docs/formats.md). Stored in the header, so later bundles may
 * raise it and older ones still open.
 */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = { log2N: 17, r: 8, p: 1 };
const MIN_LOG2N = 15;
const MAX_LOG2N = 20;
const MAX_R = 32;
const MAX_P = 4;
/** A bundle may not make the reader spend more than this on scrypt (128 * N * r bytes). */
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;

export const DEFAULT_BUNDLE_CHUNK_SIZE = 64 * 1024;
export const MIN_BUNDLE_CHUNK_SIZE = 256;
export const MAX_BUNDLE_CHUNK_SIZE = 1024 * 1024;

const KDF_SCRYPT = 1;
const SALT_BYTES = 16;
const ID_BYTES = 16;
const MAC_BYTES = 32;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
/** Bytes before the source name: magic, version, header length, KDF, salt, id, created, count, chunk size, name length. */
const HEADER_FIXED_BYTES = 70;
const MAX_SOURCE_NAME_BYTES = 1024;
export const BUNDLE_MAX_HEADER_BYTES = HEADER_FIXED_BYTES + MAX_SOURCE_NAME_BYTES + MAC_BYTES;

/** Record: PID 8, PPS 32, state 1, created 8, batch length 1, batch (UTF-8, at most 255). */
const RECORD_FIXED_BYTES = PID_LENGTH + PPS_LENGTH + 1 + 8 + 1;
const MAX_BATCH_BYTES = 255;
const MAX_RECORD_BYTES = RECORD_FIXED_BYTES + MAX_BATCH_BYTES;

export type BundlePskState = 'available' | 'exported';
const STATE_CODES: Readonly<Record<BundlePskState, number>> = { available: 0, exported: 1 };
const STATES: readonly BundlePskState[] = ['available', 'exported'];

export interface BundleRecord extends PskPair {
  readonly batch: string;
  readonly state: BundlePskState;
  readonly createdAt: Date;
}

/**
 * Records as columns (one page of an export): no object per record. Every record of one call
 * has the same state.
 */
export interface BundleColumns {
  readonly count: number;
  readonly pids: readonly string[];
  /** PPS i is bytes [32 i, 32 i + 32): ASCII, canonical form. */
  readonly pps: Buffer;
  readonly state: BundlePskState;
  /** Creation times, milliseconds since the epoch. */
  readonly createdAt: Float64Array;
  readonly batches: readonly string[];
}

export interface BundleHeader {
  readonly formatVersion: number;
  readonly kdf: ScryptParams;
  /** Random UUID chosen by the writer: lets the importer recognise a bundle it has taken in before. */
  readonly bundleId: string;
  readonly createdAt: Date;
  readonly recordCount: number;
  readonly chunkSize: number;
  /** Free text naming the exporting server. */
  readonly sourceName: string;
  readonly headerBytes: number;
}

/** Derives 64 bytes (encryption key, header MAC key) from the passphrase. Injectable, e.g. to memoise in tests. */
export type BundleKdf = (passphrase: Secret<string>, salt: Buffer, params: ScryptParams) => Buffer;

export const scryptKdf: BundleKdf = (passphrase, salt, params) => {
  const N = 2 ** params.log2N;
  // Node refuses scrypt above `maxmem` (32 MiB by default); OpenSSL needs 128 * r * (N + p + 2).
  const maxmem = 128 * params.r * (N + params.p + 2) + 1024 * 1024;
  // NFC so the same passphrase typed on different systems gives the same bytes.
  const secret = Buffer.from(passphrase.reveal().normalize('NFC'), 'utf8');
  try {
    return scryptSync(secret, salt, KEY_BYTES * 2, { N, r: params.r, p: params.p, maxmem });
  } finally {
    secret.fill(0);
  }
};

/** scryptKdf on libuv's thread pool. */
async function scryptAsync(passphrase: Secret<string>, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const N = 2 ** params.log2N;
  const maxmem = 128 * params.r * (N + params.p + 2) + 1024 * 1024;
  const secret = Buffer.from(passphrase.reveal().normalize('NFC'), 'utf8');
  try {
    return await new Promise<Buffer>((resolve, reject) =>
      scrypt(secret, salt, KEY_BYTES * 2, { N, r: params.r, p: params.p, maxmem }, (e, key) =>
        e === null ? resolve(key) : reject(e),
      ),
    );
  } finally {
    secret.fill(0);
  }
}

function malformed(what: string): ScsError {
  return new ScsError('SCS_BUNDLE_MALFORMED', `bundle: ${what}`);
}

/** One message for a wrong passphrase and for tampering: the two cannot be told apart. */
function authFailed(): ScsError {
  return new ScsError(
    'SCS_BUNDLE_AUTH_FAILED',
    'bundle does not authenticate: the passphrase is wrong or the file was changed',
  );
}

function inputInvalid(what: string): ScsError {
  return new ScsError('SCS_FORMAT_INPUT_INVALID', `bundle: ${what}`);
}

function scryptProblem(params: ScryptParams): string | undefined {
  const { log2N, r, p } = params;
  if (!Number.isInteger(log2N) || log2N < MIN_LOG2N || log2N > MAX_LOG2N) {
    return `scrypt log2(N) ${log2N} is outside ${MIN_LOG2N}-${MAX_LOG2N}`;
  }
  if (!Number.isInteger(r) || r < 1 || r > MAX_R) return `scrypt r ${r} is outside 1-${MAX_R}`;
  if (!Number.isInteger(p) || p < 1 || p > MAX_P) return `scrypt p ${p} is outside 1-${MAX_P}`;
  if (128 * 2 ** log2N * r > MAX_SCRYPT_MEMORY) return `scrypt N and r need more than ${MAX_SCRYPT_MEMORY >> 20} MiB`;
  return undefined;
}

function nonceFor(counter: number): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(Math.floor(counter / 0x100000000), 4);
  nonce.writeUInt32BE(counter >>> 0, 8);
  return nonce;
}

function aadFor(headerMac: Buffer, final: boolean): Buffer {
  const aad = Buffer.alloc(MAC_BYTES + 1);
  headerMac.copy(aad, 0);
  aad[MAC_BYTES] = final ? 1 : 0;
  return aad;
}

function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32BE(Math.floor(value / 0x100000000), at);
  buf.writeUInt32BE(value >>> 0, at + 4);
}

function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * 0x100000000 + buf.readUInt32BE(at + 4);
}

function uuidFromBytes(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export interface BundleEncoderOptions {
  readonly passphrase: Secret<string>;
  /** Written into the header before any record: the exporter must know it (count in the same snapshot). */
  readonly recordCount: number;
  readonly sourceName: string;
  readonly kdfParams?: ScryptParams;
  readonly chunkSize?: number;
  readonly createdAt?: Date;
  readonly kdf?: BundleKdf;
}

/**
 * Streaming writer: `start()` gives the header bytes, `add(records)` the chunks completed so far
 * (often none), `finish()` the final chunk. Write them to the file in that order.
 */
export class BundleEncoder {
  readonly bundleId: string;
  readonly #options: BundleEncoderOptions;
  readonly #chunkSize: number;
  readonly #plain: Buffer;
  readonly #scratch = Buffer.alloc(MAX_RECORD_BYTES);
  #fill = 0;
  #counter = 0;
  #added = 0;
  #key: Buffer | undefined;
  #headerMac: Buffer | undefined;
  #finished = false;

  constructor(options: BundleEncoderOptions) {
    const chunkSize = options.chunkSize ?? DEFAULT_BUNDLE_CHUNK_SIZE;
    if (!Number.isInteger(chunkSize) || chunkSize < MIN_BUNDLE_CHUNK_SIZE || chunkSize > MAX_BUNDLE_CHUNK_SIZE) {
      throw inputInvalid(`chunk size must be ${MIN_BUNDLE_CHUNK_SIZE}-${MAX_BUNDLE_CHUNK_SIZE} bytes`);
    }
    const problem = scryptProblem(options.kdfParams ?? DEFAULT_SCRYPT_PARAMS);
    if (problem !== undefined) throw inputInvalid(problem);
    if (!Number.isSafeInteger(options.recordCount) || options.recordCount < 0) {
      throw inputInvalid('the record count must be a whole number');
    }
    if (Buffer.byteLength(options.sourceName, 'utf8') > MAX_SOURCE_NAME_BYTES) {
      throw inputInvalid(`the source name is longer than ${MAX_SOURCE_NAME_BYTES} bytes`);
    }
    if (options.passphrase.reveal().length === 0) {
      throw new ScsError('SCS_PASSPHRASE_MISSING', 'a bundle needs a passphrase');
    }
    this.#options = options;
    this.#chunkSize = chunkSize;
    this.#plain = Buffer.alloc(chunkSize);
    this.bundleId = randomUUID();
  }

  /** Derives the keys (scrypt: the slow part) and returns the authenticated header. */
  start(): Buffer {
    if (this.#key !== undefined) throw new Error('BundleEncoder.start called twice');
    const o = this.#options;
    const params = o.kdfParams ?? DEFAULT_SCRYPT_PARAMS;
    const salt = randomBytes(SALT_BYTES);
    return this.#begin(salt, (o.kdf ?? scryptKdf)(o.passphrase, salt, params));
  }

  /** Builds and authenticates the header with keys derived from `salt`. */
  #begin(salt: Buffer, keys: Buffer): Buffer {
    if (this.#key !== undefined) throw new Error('BundleEncoder.start called twice');
    const o = this.#options;
    const params = o.kdfParams ?? DEFAULT_SCRYPT_PARAMS;
    const name = Buffer.from(o.sourceName, 'utf8');
    const headerBytes = HEADER_FIXED_BYTES + name.length + MAC_BYTES;
    const header = Buffer.alloc(headerBytes);
    BUNDLE_MAGIC.copy(header, 0);
    header.writeUInt16BE(BUNDLE_FORMAT_VERSION, 8);
    header.writeUInt16BE(headerBytes, 10);
    header[12] = KDF_SCRYPT;
    header[13] = params.log2N;
    header[14] = params.r;
    header[15] = params.p;
    salt.copy(header, 16);
    Buffer.from(this.bundleId.replaceAll('-', ''), 'hex').copy(header, 32);
    writeU64(header, (o.createdAt ?? new Date()).getTime(), 48);
    writeU64(header, o.recordCount, 56);
    header.writeUInt32BE(this.#chunkSize, 64);
    header.writeUInt16BE(name.length, 68);
    name.copy(header, HEADER_FIXED_BYTES);
    this.#key = keys.subarray(0, KEY_BYTES);
    this.#headerMac = createHmac('sha256', keys.subarray(KEY_BYTES))
      .update(header.subarray(0, HEADER_FIXED_BYTES + name.length))
      .digest();
    this.#headerMac.copy(header, HEADER_FIXED_BYTES + name.length);
    return header;
  }

  /**
   * Like `start`, with scrypt on libuv's thread pool (the default KDF only; an injected `kdf`
   * runs as given): the event loop stays free, e.g. to read the first rows meanwhile.
   */
  async startAsync(): Promise<Buffer> {
    if (this.#options.kdf !== undefined) return this.start();
    const o = this.#options;
    const params = o.kdfParams ?? DEFAULT_SCRYPT_PARAMS;
    const salt = randomBytes(SALT_BYTES);
    const keys = await scryptAsync(o.passphrase, salt, params);
    return this.#begin(salt, keys);
  }

  /**
   * Records given as columns (see BundleColumns): the export's path, byte for byte the same
   * records as `add` would write.
   */
  addColumns(c: BundleColumns): Buffer[] {
    if (this.#key === undefined || this.#finished) throw new Error('BundleEncoder.add outside start()..finish()');
    if (!Number.isSafeInteger(c.count) || c.count < 0 || c.pps.length < c.count * PPS_LENGTH) {
      throw inputInvalid('columns: the count does not match the PPS bytes');
    }
    if (this.#added + c.count > this.#options.recordCount) {
      throw inputInvalid(`more records than the ${this.#options.recordCount} declared in the header`);
    }
    const state = STATE_CODES[c.state] as number | undefined;
    if (state === undefined) throw inputInvalid(`record ${this.#added + 1}: state must be available or exported`);
    const out: Buffer[] = [];
    const s = this.#scratch;
    s[PID_LENGTH + PPS_LENGTH] = state;
    let lastBatch: string | undefined;
    let batchLength = 0;
    try {
      for (let i = 0; i < c.count; i++) {
        const n = this.#added + 1;
        const pid = c.pids[i] ?? '';
        if (canonicalPid(pid) === undefined || !isCanonicalPpsAt(c.pps, i * PPS_LENGTH)) {
          throw inputInvalid(`record ${n}: the PID or PPS is not a valid value in canonical form`);
        }
        const created = c.createdAt[i] as number;
        if (!Number.isSafeInteger(created) || created < 0) throw inputInvalid(`record ${n}: invalid creation time`);
        const batch = c.batches[i] ?? '';
        // Consecutive rows nearly always share a batch: encode it once per run.
        if (batch !== lastBatch) {
          batchLength = Buffer.byteLength(batch, 'utf8');
          if (batchLength > MAX_BATCH_BYTES) throw inputInvalid(`record ${n}: the batch name is longer than 255 bytes`);
          s[RECORD_FIXED_BYTES - 1] = batchLength;
          s.write(batch, RECORD_FIXED_BYTES, 'utf8');
          lastBatch = batch;
        }
        s.write(pid, 0, 'latin1');
        c.pps.copy(s, PID_LENGTH, i * PPS_LENGTH, (i + 1) * PPS_LENGTH);
        writeU64(s, created, PID_LENGTH + PPS_LENGTH + 1);
        this.#write(s, RECORD_FIXED_BYTES + batchLength, out);
        this.#added = n;
      }
    } finally {
      s.fill(0, PID_LENGTH, PID_LENGTH + PPS_LENGTH);
    }
    return out;
  }

  add(records: readonly BundleRecord[]): Buffer[] {
    if (this.#key === undefined || this.#finished) throw new Error('BundleEncoder.add outside start()..finish()');
    if (this.#added + records.length > this.#options.recordCount) {
      throw inputInvalid(`more records than the ${this.#options.recordCount} declared in the header`);
    }
    const out: Buffer[] = [];
    const s = this.#scratch;
    for (const r of records) {
      const n = this.#added + 1;
      const pps = r.pps.reveal();
      if (canonicalPid(r.pid) === undefined || canonicalPps(pps) === undefined) {
        throw inputInvalid(`record ${n}: the PID or PPS is not a valid value in canonical form`);
      }
      const state = STATE_CODES[r.state] as number | undefined;
      if (state === undefined) throw inputInvalid(`record ${n}: state must be available or exported`);
      const created = r.createdAt.getTime();
      if (!Number.isSafeInteger(created) || created < 0) throw inputInvalid(`record ${n}: invalid creation time`);
      s.write(r.pid, 0, 'latin1');
      s.write(pps, PID_LENGTH, 'latin1');
      s[PID_LENGTH + PPS_LENGTH] = state;
      writeU64(s, created, PID_LENGTH + PPS_LENGTH + 1);
      const batchBytes = Buffer.byteLength(r.batch, 'utf8');
      if (batchBytes > MAX_BATCH_BYTES) throw inputInvalid(`record ${n}: the batch name is longer than 255 bytes`);
      s[RECORD_FIXED_BYTES - 1] = batchBytes;
      s.write(r.batch, RECORD_FIXED_BYTES, 'utf8');
      this.#write(s, RECORD_FIXED_BYTES + batchBytes, out);
      this.#added = n;
    }
    return out;
  }

  /** Pads and seals the final chunk. Throws if fewer records came than the header declares. */
  finish(): Buffer {
    if (this.#key === undefined || this.#finished) throw new Error('BundleEncoder.finish outside start()..finish()');
    if (this.#added !== this.#options.recordCount) {
      throw inputInvalid(`${this.#added} records given, ${this.#options.recordCount} declared in the header`);
    }
    this.#finished = true;
    this.#plain.fill(0, this.#fill);
    return this.#seal(true);
  }

  #write(bytes: Buffer, length: number, out: Buffer[]): void {
    let from = 0;
    while (from < length) {
      // Seal a full chunk only once more data follows, so the final chunk always holds the last record.
      if (this.#fill === this.#chunkSize) {
        out.push(this.#seal(false));
        this.#fill = 0;
      }
      const n = Math.min(length - from, this.#chunkSize - this.#fill);
      bytes.copy(this.#plain, this.#fill, from, from + n);
      this.#fill += n;
      from += n;
    }
  }

  #seal(final: boolean): Buffer {
    const key = this.#key as Buffer;
    const cipher = createCipheriv('aes-256-gcm', key, nonceFor(this.#counter++), { authTagLength: TAG_BYTES });
    cipher.setAAD(aadFor(this.#headerMac as Buffer, final));
    const body = cipher.update(this.#plain);
    cipher.final();
    return Buffer.concat([body, cipher.getAuthTag()], this.#chunkSize + TAG_BYTES);
  }
}

export interface BundleDecoderOptions {
  readonly passphrase: Secret<string>;
  readonly kdf?: BundleKdf;
}

type Phase = 'header' | 'chunks' | 'done' | 'failed';

/**
 * Streaming reader: `push` any split of the file; each call returns the records of the chunks it
 * completed. A full chunk is held until the next byte (or `finish`) shows whether it is the last.
 * `header` is set, authenticated, as soon as the header has been read. `finish` returns the
 * last records, or throws if the file was cut short.
 */
export class BundleDecoder {
  readonly #options: BundleDecoderOptions;
  #phase: Phase = 'header';
  #head: Buffer = Buffer.alloc(0);
  #header: BundleHeader | undefined;
  #key: Buffer | undefined;
  #headerMac: Buffer | undefined;
  #chunk: Buffer = Buffer.alloc(0);
  #fill = 0;
  #counter = 0;
  #carry: Buffer = Buffer.alloc(0);
  #decoded = 0;

  constructor(options: BundleDecoderOptions) {
    if (options.passphrase.reveal().length === 0) {
      throw new ScsError('SCS_PASSPHRASE_MISSING', 'a bundle needs a passphrase');
    }
    this.#options = options;
  }

  get header(): BundleHeader | undefined {
    return this.#header;
  }

  push(bytes: Buffer): BundleRecord[] {
    return recordsOf(this.pushColumns(bytes).take());
  }

  finish(): BundleRecord[] {
    return recordsOf(this.finishColumns().take());
  }

  /**
   * Like `push`, as columns (no object per record): the import's path. The records are added
   * to `into` (returned); the PPS bytes taken from it are plaintext: zero them when done.
   */
  pushColumns(bytes: Buffer, into: BundleColumnBuilder = new BundleColumnBuilder()): BundleColumnBuilder {
    return this.#guard(() => {
      if (this.#phase === 'done') throw new Error('BundleDecoder.push called after finish()');
      const out = into;
      let at = 0;
      if (this.#phase === 'header') at = this.#readHeader(bytes);
      while (at < bytes.length) {
        const full = this.#chunk.length;
        if (this.#fill === full) {
          this.#open(false, out);
          this.#fill = 0;
        }
        const n = Math.min(bytes.length - at, full - this.#fill);
        bytes.copy(this.#chunk, this.#fill, at, at + n);
        this.#fill += n;
        at += n;
      }
      return out;
    });
  }

  /** Like `finish`, as columns (see pushColumns). */
  finishColumns(into: BundleColumnBuilder = new BundleColumnBuilder()): BundleColumnBuilder {
    return this.#guard(() => {
      if (this.#phase === 'done') return into;
      if (this.#phase === 'header') {
        throw malformed(
          this.#head.length === 0
            ? 'the file is empty'
            : `truncated: the file ends inside the header (${this.#head.length} bytes)`,
        );
      }
      const full = this.#chunk.length;
      if (this.#fill === 0) {
        throw malformed(
          this.#counter === 0
            ? 'truncated: no encrypted chunk follows the header'
            : 'truncated: the final chunk is missing',
        );
      }
      if (this.#fill < full) {
        throw malformed(`truncated: the last chunk has ${this.#fill} of ${full} bytes`);
      }
      const out = into;
      try {
        this.#open(true, out);
      } catch (e) {
        // A cut exactly between chunks leaves a genuine non-final chunk last: say "truncated".
        if (isAuthFailure(e) && this.#opens(false)) {
          throw malformed(`truncated: the file ends after chunk ${this.#counter + 1}, which is not the final chunk`);
        }
        throw e;
      }
      this.#phase = 'done';
      return out;
    });
  }

  #guard<T>(fn: () => T): T {
    if (this.#phase === 'failed') throw new Error('BundleDecoder used after it reported an error');
    try {
      return fn();
    } catch (e) {
      this.#phase = 'failed';
      throw e;
    }
  }

  /** Buffers header bytes (at most BUNDLE_MAX_HEADER_BYTES); returns how many of `bytes` it took. */
  #readHeader(bytes: Buffer): number {
    const have = this.#head.length;
    const want = have < 12 ? 12 : this.#head.readUInt16BE(10);
    const take = Math.min(bytes.length, want - have);
    this.#head = Buffer.concat([this.#head, bytes.subarray(0, take)]);
    const head = this.#head;
    const magic = Math.min(head.length, BUNDLE_MAGIC.length);
    if (!head.subarray(0, magic).equals(BUNDLE_MAGIC.subarray(0, magic))) {
      throw malformed('not an amt-scs transfer bundle (the first bytes are not the bundle magic)');
    }
    if (head.length < 12) return take;
    if (have < 12) {
      const version = head.readUInt16BE(8);
      if (version !== BUNDLE_FORMAT_VERSION) {
        throw malformed(`format version ${version} is not supported (this server reads ${BUNDLE_FORMAT_VERSION})`);
      }
      const length = head.readUInt16BE(10);
      if (length < HEADER_FIXED_BYTES + MAC_BYTES || length > BUNDLE_MAX_HEADER_BYTES) {
        throw malformed(
          `header length ${length} is outside ${HEADER_FIXED_BYTES + MAC_BYTES}-${BUNDLE_MAX_HEADER_BYTES}`,
        );
      }
      return take + this.#readHeader(bytes.subarray(take));
    }
    if (head.length < head.readUInt16BE(10)) return take;
    this.#parseHeader(head);
    this.#head = Buffer.alloc(0);
    this.#phase = 'chunks';
    return take;
  }

  #parseHeader(head: Buffer): void {
    const headerBytes = head.length;
    if (head[12] !== KDF_SCRYPT) throw malformed(`key derivation ${head[12]} is not supported (1 = scrypt)`);
    const kdf: ScryptParams = { log2N: head[13] as number, r: head[14] as number, p: head[15] as number };
    const problem = scryptProblem(kdf);
    if (problem !== undefined) throw malformed(problem);
    const recordCount = readU64(head, 56);
    if (!Number.isSafeInteger(recordCount)) throw malformed('the record count is out of range');
    const created = readU64(head, 48);
    if (!Number.isSafeInteger(created)) throw malformed('the creation time is out of range');
    const chunkSize = head.readUInt32BE(64);
    if (chunkSize < MIN_BUNDLE_CHUNK_SIZE || chunkSize > MAX_BUNDLE_CHUNK_SIZE) {
      throw malformed(`chunk size ${chunkSize} is outside ${MIN_BUNDLE_CHUNK_SIZE}-${MAX_BUNDLE_CHUNK_SIZE}`);
    }
    const nameBytes = head.readUInt16BE(68);
    if (HEADER_FIXED_BYTES + nameBytes + MAC_BYTES !== headerBytes) {
      throw malformed(`the source name length ${nameBytes} does not match the header length ${headerBytes}`);
    }
    const macAt = HEADER_FIXED_BYTES + nameBytes;
    const keys = (this.#options.kdf ?? scryptKdf)(this.#options.passphrase, head.subarray(16, 32), kdf);
    const mac = createHmac('sha256', keys.subarray(KEY_BYTES)).update(head.subarray(0, macAt)).digest();
    if (!timingSafeEqual(mac, head.subarray(macAt, macAt + MAC_BYTES))) throw authFailed();
    let sourceName: string;
    try {
      sourceName = new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(HEADER_FIXED_BYTES, macAt));
    } catch {
      throw malformed('the source name is not UTF-8');
    }
    this.#key = keys.subarray(0, KEY_BYTES);
    this.#headerMac = mac;
    this.#chunk = Buffer.alloc(chunkSize + TAG_BYTES);
    this.#header = {
      formatVersion: head.readUInt16BE(8),
      kdf,
      bundleId: uuidFromBytes(head.subarray(32, 32 + ID_BYTES)),
      createdAt: new Date(created),
      recordCount,
      chunkSize,
      sourceName,
      headerBytes,
    };
  }

  #decrypt(final: boolean): Buffer {
    const size = this.#chunk.length - TAG_BYTES;
    const decipher = createDecipheriv('aes-256-gcm', this.#key as Buffer, nonceFor(this.#counter), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(aadFor(this.#headerMac as Buffer, final));
    decipher.setAuthTag(this.#chunk.subarray(size));
    const plain = decipher.update(this.#chunk.subarray(0, size));
    try {
      decipher.final();
    } catch {
      throw authFailed();
    }
    return plain;
  }

  #opens(final: boolean): boolean {
    try {
      this.#decrypt(final);
      return true;
    } catch {
      return false;
    }
  }

  #open(final: boolean, out: BundleColumnBuilder): void {
    const plain = this.#decrypt(final);
    this.#counter++;
    try {
      this.#records(plain, final, out);
    } finally {
      plain.fill(0);
    }
  }

  /** Records run across chunks; after the last one, only zero padding to the end of the final chunk. */
  #records(plain: Buffer, final: boolean, out: BundleColumnBuilder): void {
    const header = this.#header as BundleHeader;
    const data = this.#carry.length === 0 ? plain : Buffer.concat([this.#carry, plain]);
    this.#carry.fill(0);
    this.#carry = Buffer.alloc(0);
    let at = 0;
    while (this.#decoded < header.recordCount) {
      if (data.length - at < RECORD_FIXED_BYTES) break;
      const size = RECORD_FIXED_BYTES + (data[at + RECORD_FIXED_BYTES - 1] as number);
      if (data.length - at < size) break;
      out.add(data, at, size, this.#decoded + 1);
      this.#decoded++;
      at += size;
    }
    if (this.#decoded < header.recordCount) {
      if (final) throw malformed(`the final chunk ends after ${this.#decoded} of ${header.recordCount} records`);
      this.#carry = Buffer.from(data.subarray(at));
      if (data !== plain) data.fill(0);
      return;
    }
    if (!final) throw malformed(`all ${header.recordCount} records end before the final chunk`);
    for (let i = at; i < data.length; i++) {
      if (data[i] !== 0) throw malformed(`data after the last of ${header.recordCount} records`);
    }
    if (data !== plain) data.fill(0);
  }
}

function isAuthFailure(e: unknown): boolean {
  return e instanceof ScsError && e.code === 'SCS_BUNDLE_AUTH_FAILED';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decoded records as columns: record i is `pids[i]`, PPS bytes [32 i, 32 i + 32) of `pps`
 * (canonical ASCII, plaintext: zero it when done), `states[i]`, `createdAt[i]` (ms since the
 * epoch) and `batches[i]`.
 */
export interface DecodedBundleColumns {
  readonly count: number;
  readonly pids: readonly Pid[];
  readonly pps: Buffer;
  readonly states: readonly BundlePskState[];
  readonly createdAt: readonly number[];
  readonly batches: readonly string[];
}

function badRecord(n: number, what: string): ScsError {
  // The chunk authenticated, so a bad value here means the writer was broken, not an attacker.
  return malformed(`record ${n}: ${what}`);
}

/**
 * Collects decoded records as columns across any number of pushes (`pushColumns(bytes, into)`)
 * until `take`; consecutive records share one batch string.
 */
export class BundleColumnBuilder {
  #count = 0;
  #pids: Pid[] = [];
  #pps: Buffer = Buffer.alloc(0);
  #states: BundlePskState[] = [];
  #createdAt: number[] = [];
  #batches: string[] = [];
  #lastBatch: Buffer | undefined;
  #lastBatchText = '';

  /** Records collected since the last `take`. */
  get count(): number {
    return this.#count;
  }

  /** The records collected so far; the builder starts empty again. */
  take(): DecodedBundleColumns {
    const out: DecodedBundleColumns = {
      count: this.#count,
      pids: this.#pids,
      pps: this.#pps.subarray(0, this.#count * PPS_LENGTH),
      states: this.#states,
      createdAt: this.#createdAt,
      batches: this.#batches,
    };
    this.#count = 0;
    this.#pids = [];
    // The next set is likely as large: one allocation of that size instead of doubling up to it.
    this.#pps = Buffer.alloc(out.pps.length);
    this.#states = [];
    this.#createdAt = [];
    this.#batches = [];
    return out;
  }

  /** Zeroes the PPS collected and not taken (an import that failed). */
  discard(): void {
    this.#pps.fill(0);
    this.take();
  }

  /** Decodes record `n` at `data[at .. at + size)` (the decoder's side). */
  add(data: Buffer, at: number, size: number, n: number): void {
    const pidText = data.toString('latin1', at, at + PID_LENGTH);
    let pid = canonicalPid(pidText);
    if (this.#pps.length < (this.#count + 1) * PPS_LENGTH) this.#grow();
    const ppsAt = this.#count * PPS_LENGTH;
    const ppsFrom = at + PID_LENGTH;
    try {
      pid ??= readPid(pidText);
      if (isCanonicalPpsAt(data, ppsFrom)) {
        // A loop: for 32 bytes it is cheaper than a call into Buffer.copy.
        const pps = this.#pps;
        for (let k = 0; k < PPS_LENGTH; k++) pps[ppsAt + k] = data[ppsFrom + k] as number;
      } else {
        // Another spelling of a valid PPS (readPps accepts it or throws without echoing it).
        this.#pps.write(readPps(data.toString('latin1', ppsFrom, ppsFrom + PPS_LENGTH)), ppsAt, 'latin1');
      }
    } catch (e) {
      throw badRecord(n, e instanceof ScsError ? e.message : 'invalid PID or PPS');
    }
    const state = STATES[data[ppsFrom + PPS_LENGTH] as number];
    if (state === undefined) throw badRecord(n, 'unknown state');
    const created = readU64(data, ppsFrom + PPS_LENGTH + 1);
    if (!Number.isSafeInteger(created)) throw badRecord(n, 'creation time out of range');
    const from = at + RECORD_FIXED_BYTES;
    const length = size - RECORD_FIXED_BYTES;
    const last = this.#lastBatch;
    let same = last !== undefined && last.length === length;
    for (let k = 0; same && k < length; k++) same = data[from + k] === (last as Buffer)[k];
    if (!same) {
      try {
        this.#lastBatchText = utf8.decode(data.subarray(from, from + length));
      } catch {
        throw badRecord(n, 'the batch name is not UTF-8');
      }
      this.#lastBatch = Buffer.from(data.subarray(from, from + length));
    }
    this.#pids.push(pid);
    this.#states.push(state);
    this.#createdAt.push(created);
    this.#batches.push(this.#lastBatchText);
    this.#count++;
  }

  #grow(): void {
    const next = Buffer.alloc(Math.max(1024 * PPS_LENGTH, this.#pps.length * 2));
    this.#pps.copy(next);
    this.#pps.fill(0);
    this.#pps = next;
  }
}

/** Columns as BundleRecord objects (push/finish); zeroes the columns' PPS bytes. */
function recordsOf(c: DecodedBundleColumns): BundleRecord[] {
  const out: BundleRecord[] = new Array<BundleRecord>(c.count);
  for (let i = 0; i < c.count; i++) {
    out[i] = {
      pid: c.pids[i] as Pid,
      pps: new Secret(c.pps.toString('latin1', i * PPS_LENGTH, (i + 1) * PPS_LENGTH) as Pps),
      batch: c.batches[i] as string,
      state: c.states[i] as BundlePskState,
      createdAt: new Date(c.createdAt[i] as number),
    };
  }
  c.pps.fill(0);
  return out;
}
