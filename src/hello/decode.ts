import { ScsError } from '../errors.ts';
import { isSymbol } from '../psk/checksum.ts';
import { parsePid, PID_LENGTH, type Pid } from '../psk/pid.ts';
import { formatUuid } from './uuid.ts';

/**
 * The device hello of protocol.md §1: version 2 (PSK, exactly 32 bytes) and version 3 (PKI,
 * variable). Bytes in, values out; no sockets here. All integers are little-endian.
 */

/** §1a: AdminCredentialsSet(2) InterfaceVersion(2) RetryCount(4) UUID(16) PID(8). */
export const HELLO_V2_LENGTH = 32;
/** §1b: the first 24 bytes of §1a, then N(1), then N × {algorithm(1), length(1), hash}. */
export const HELLO_V3_HEADER_LENGTH = 25;
/** The largest possible hello: 255 SHA-384 entries (protocol.md §1b). */
export const HELLO_MAX_LENGTH = HELLO_V3_HEADER_LENGTH + 255 * (2 + 48);

const OFFSET_VERSION = 2;
const OFFSET_RETRY = 4;
const OFFSET_UUID = 8;
const OFFSET_PID = 24;
const OFFSET_HASH_COUNT = 24;

export type CertHashAlgorithm = 'sha1' | 'sha256' | 'sha384';

/** §1b algorithm ids and the hash length each implies. */
export const HASH_ALGORITHMS: Readonly<Record<number, { name: CertHashAlgorithm; length: number; label: string }>> = {
  1: { name: 'sha1', length: 20, label: 'SHA-1' },
  2: { name: 'sha256', length: 32, label: 'SHA-256' },
  3: { name: 'sha384', length: 48, label: 'SHA-384' },
};

export interface CertHash {
  readonly algorithm: CertHashAlgorithm;
  /** Lowercase hex of the hash bytes. */
  readonly hash: string;
}

interface HelloBase {
  /** AdminCredentialsSet = 1: the MEBx password was changed from its default. */
  readonly adminCredentialsSet: boolean;
  readonly retryCount: number;
  /** Text form of §1c. */
  readonly uuid: string;
}

export interface HelloV2 extends HelloBase {
  readonly version: 2;
  readonly pid: Pid;
}

export interface HelloV3 extends HelloBase {
  readonly version: 3;
  readonly hashes: readonly CertHash[];
}

export type Hello = HelloV2 | HelloV3;

/** Why a hello was refused; `details.reason` of the SCS_HELLO_MALFORMED error. */
export type HelloMalformedReason =
  | 'empty'
  | 'truncated'
  | 'bad-admin-credentials-set'
  | 'unknown-version'
  | 'bad-pid'
  | 'bad-hash-algorithm'
  | 'bad-hash-length'
  | 'hash-count-past-end'
  | 'trailing-bytes'
  | 'too-long';

export function helloMalformed(reason: HelloMalformedReason, message: string, cause?: unknown): ScsError {
  return new ScsError('SCS_HELLO_MALFORMED', `malformed hello: ${message}`, {
    details: { reason },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** The reason carried by an SCS_HELLO_MALFORMED error (undefined for anything else). */
export function malformedReason(error: unknown): HelloMalformedReason | undefined {
  if (!(error instanceof ScsError) || error.code !== 'SCS_HELLO_MALFORMED') return undefined;
  return error.details.reason as HelloMalformedReason;
}

/**
 * An incremental decoder: feed it the bytes of one connection in whatever pieces TCP delivers
 * (`push`), then call `end()` when the peer closes. Every field is checked as soon as its bytes
 * arrive, so garbage is refused at the first bad byte, and it never holds more than the hello
 * can be (at most HELLO_MAX_LENGTH bytes). After a failure every call rethrows that failure.
 */
export class HelloDecoder {
  #buf: Buffer = Buffer.allocUnsafe(HELLO_V2_LENGTH);
  #length = 0;
  /** Total length once known (v2: 32; v3: grows as each hash entry header is read). */
  #expected = -1;
  #version: 0 | 2 | 3 = 0;
  /** v3: hash entries declared, entries whose header has been checked, and where the next starts. */
  #hashCount = -1;
  #hashesSeen = 0;
  #nextEntry = HELLO_V3_HEADER_LENGTH;
  #checked = 0;
  #failure: ScsError | undefined;

  get bytesReceived(): number {
    return this.#length;
  }

  /** True once a whole hello has arrived (more bytes would be trailing garbage). */
  get complete(): boolean {
    return this.#failure === undefined && this.#expected >= 0 && this.#length === this.#expected && this.#entriesDone();
  }

  push(chunk: Uint8Array): void {
    if (this.#failure) throw this.#failure;
    if (chunk.length === 0) return;
    if (this.#length + chunk.length > HELLO_MAX_LENGTH) {
      this.#fail(
        helloMalformed('too-long', `more than ${HELLO_MAX_LENGTH} bytes (the longest possible hello) were sent`),
      );
    }
    this.#append(chunk);
    this.#advance();
  }

  /** The peer closed: returns the hello, or throws SCS_HELLO_MALFORMED saying what is missing. */
  end(): Hello {
    if (this.#failure) throw this.#failure;
    if (this.#length === 0) this.#fail(helloMalformed('empty', 'the connection closed without sending a byte'));
    if (!this.complete) this.#fail(this.#incomplete());
    return this.#build(this.#buf.subarray(0, this.#length));
  }

  #append(chunk: Uint8Array): void {
    const needed = this.#length + chunk.length;
    if (needed > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.min(HELLO_MAX_LENGTH, Math.max(needed, this.#buf.length * 2)));
      this.#buf.copy(grown, 0, 0, this.#length);
      this.#buf = grown;
    }
    this.#buf.set(chunk, this.#length);
    this.#length = needed;
  }

  #fail(error: ScsError): never {
    this.#failure = error;
    throw error;
  }

  #entriesDone(): boolean {
    return this.#version === 2 || (this.#hashCount >= 0 && this.#hashesSeen === this.#hashCount);
  }

  /** Checks every field whose bytes have arrived since the last call. */
  #advance(): void {
    const b = this.#buf;
    const n = this.#length;
    if (this.#checked < 2 && n >= 2) {
      const acs = b.readUInt16LE(0);
      if (acs > 1) this.#fail(helloMalformed('bad-admin-credentials-set', `AdminCredentialsSet is ${acs}, not 0 or 1`));
      this.#checked = 2;
    }
    if (this.#checked < 4 && n >= 4) {
      const version = b.readUInt16LE(OFFSET_VERSION);
      if (version !== 2 && version !== 3) {
        this.#fail(helloMalformed('unknown-version', `InterfaceVersion is ${version}, not 2 (PSK) or 3 (PKI)`));
      }
      this.#version = version;
      this.#expected = version === 2 ? HELLO_V2_LENGTH : HELLO_V3_HEADER_LENGTH;
      this.#checked = 4;
    }
    if (this.#version === 2) {
      if (n >= HELLO_V2_LENGTH && this.#checked < HELLO_V2_LENGTH) {
        checkPid(b, OFFSET_PID);
        this.#checked = HELLO_V2_LENGTH;
      }
    } else if (this.#version === 3) {
      if (this.#hashCount < 0 && n >= HELLO_V3_HEADER_LENGTH) {
        this.#hashCount = b[OFFSET_HASH_COUNT] as number;
        this.#checked = HELLO_V3_HEADER_LENGTH;
      }
      while (this.#hashCount >= 0 && this.#hashesSeen < this.#hashCount && n >= this.#nextEntry + 2) {
        const at = this.#nextEntry;
        const entry = checkHashEntry(b, at, this.#hashesSeen + 1, this.#hashCount);
        this.#hashesSeen++;
        this.#nextEntry = at + 2 + entry.length;
        this.#expected = this.#nextEntry;
        this.#checked = at + 2;
      }
    }
    if (this.#expected >= 0 && n > this.#expected && this.#entriesDone()) {
      this.#fail(
        helloMalformed(
          'trailing-bytes',
          `${n - this.#expected} byte(s) follow the end of a version ${this.#version} hello of ${this.#expected} bytes`,
        ),
      );
    }
  }

  #incomplete(): ScsError {
    const n = this.#length;
    if (this.#version === 3 && this.#hashCount >= 0) {
      const inside = this.#hashesSeen < this.#hashCount ? this.#hashesSeen + 1 : this.#hashesSeen;
      return helloMalformed(
        'hash-count-past-end',
        `the hash count ${this.#hashCount} runs past the end: the message ended after ${n} bytes, inside hash ${inside}`,
      );
    }
    const need = this.#version === 2 ? `${HELLO_V2_LENGTH}` : `at least ${HELLO_V3_HEADER_LENGTH}`;
    return helloMalformed('truncated', `the connection closed after ${n} of ${need} bytes`);
  }

  #build(bytes: Buffer): Hello {
    return buildHello(bytes, this.#version === 3 ? this.#hashCount : -1);
  }
}

function checkPid(b: Buffer, at: number): Pid {
  for (let i = 0; i < PID_LENGTH; i++) {
    const c = b[at + i] as number;
    if (!isSymbol(c)) {
      throw helloMalformed(
        'bad-pid',
        `PID byte ${i + 1} is 0x${c.toString(16).padStart(2, '0')}, not an uppercase letter or digit`,
      );
    }
  }
  try {
    return parsePid(b.toString('latin1', at, at + PID_LENGTH));
  } catch (cause) {
    throw helloMalformed('bad-pid', cause instanceof Error ? cause.message : 'invalid PID', cause);
  }
}

function checkHashEntry(b: Buffer, at: number, index: number, count: number): { length: number } {
  const alg = b[at] as number;
  const len = b[at + 1] as number;
  const known = HASH_ALGORITHMS[alg];
  if (!known) {
    throw helloMalformed(
      'bad-hash-algorithm',
      `hash ${index} of ${count}: algorithm ${alg} is not 1 (SHA-1), 2 (SHA-256) or 3 (SHA-384)`,
    );
  }
  if (len !== known.length) {
    throw helloMalformed(
      'bad-hash-length',
      `hash ${index} of ${count}: length ${len} does not match ${known.label} (${known.length})`,
    );
  }
  return { length: len };
}

/** Builds the value from a complete, already-checked message. */
function buildHello(b: Buffer, hashCount: number): Hello {
  const base = {
    adminCredentialsSet: b.readUInt16LE(0) === 1,
    retryCount: b.readUInt32LE(OFFSET_RETRY),
    uuid: formatUuid(b, OFFSET_UUID),
  };
  if (hashCount < 0)
    return { version: 2, ...base, pid: b.toString('latin1', OFFSET_PID, OFFSET_PID + PID_LENGTH) as Pid };
  const hashes: CertHash[] = [];
  let at = HELLO_V3_HEADER_LENGTH;
  for (let i = 0; i < hashCount; i++) {
    const alg = HASH_ALGORITHMS[b[at] as number];
    const len = b[at + 1] as number;
    if (alg) hashes.push({ algorithm: alg.name, hash: b.toString('hex', at + 2, at + 2 + len) });
    at += 2 + len;
  }
  return { version: 3, ...base, hashes };
}

/** Decodes one whole message (what a connection delivered before it closed). */
export function decodeHello(bytes: Uint8Array): Hello {
  const decoder = new HelloDecoder();
  decoder.push(bytes);
  return decoder.end();
}
