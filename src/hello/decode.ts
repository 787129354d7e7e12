import { ScsError } from '../errors.ts';
import { ALPHABET, isSymbol } from '../psk/checksum.ts';
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

/** How far a message has been checked; shared by the incremental and the one-shot paths. */
interface Progress {
  /** Total length once known (v2: 32; v3: grows as each hash entry header is read). */
  expected: number;
  version: 0 | 2 | 3;
  /** Bytes whose fields have been checked. */
  checked: number;
  /** v3: hash entries declared (-1 until byte 24 arrived), entries checked, where the next starts. */
  hashCount: number;
  hashesSeen: number;
  nextEntry: number;
}

const newProgress = (): Progress => ({
  expected: -1,
  version: 0,
  checked: 0,
  hashCount: -1,
  hashesSeen: 0,
  nextEntry: HELLO_V3_HEADER_LENGTH,
});

const u16 = (b: Uint8Array, at: number): number => (b[at] as number) | ((b[at + 1] as number) << 8);

function entriesDone(p: Progress): boolean {
  return p.version === 2 || (p.hashCount >= 0 && p.hashesSeen === p.hashCount);
}

function isComplete(p: Progress, n: number): boolean {
  return p.expected >= 0 && n === p.expected && entriesDone(p);
}

/** Checks every field of b[0..n) that has not been checked yet; throws at the first bad one. */
function advance(b: Uint8Array, n: number, p: Progress): void {
  if (p.checked < 2 && n >= 2) {
    const acs = u16(b, 0);
    if (acs > 1) throw helloMalformed('bad-admin-credentials-set', `AdminCredentialsSet is ${acs}, not 0 or 1`);
    p.checked = 2;
  }
  if (p.checked < 4 && n >= 4) {
    const version = u16(b, OFFSET_VERSION);
    if (version !== 2 && version !== 3) {
      throw helloMalformed('unknown-version', `InterfaceVersion is ${version}, not 2 (PSK) or 3 (PKI)`);
    }
    p.version = version;
    p.expected = version === 2 ? HELLO_V2_LENGTH : HELLO_V3_HEADER_LENGTH;
    p.checked = 4;
  }
  if (p.version === 2) {
    if (n >= HELLO_V2_LENGTH && p.checked < HELLO_V2_LENGTH) {
      checkPid(b, OFFSET_PID);
      p.checked = HELLO_V2_LENGTH;
    }
  } else if (p.version === 3) {
    if (p.hashCount < 0 && n >= HELLO_V3_HEADER_LENGTH) {
      p.hashCount = b[OFFSET_HASH_COUNT] as number;
      p.checked = HELLO_V3_HEADER_LENGTH;
    }
    while (p.hashCount >= 0 && p.hashesSeen < p.hashCount && n >= p.nextEntry + 2) {
      const at = p.nextEntry;
      const length = checkHashEntry(b, at, p.hashesSeen + 1, p.hashCount);
      p.hashesSeen++;
      p.nextEntry = at + 2 + length;
      p.expected = p.nextEntry;
      p.checked = at + 2;
    }
  }
  if (p.expected >= 0 && n > p.expected && entriesDone(p)) {
    throw helloMalformed(
      'trailing-bytes',
      `${n - p.expected} byte(s) follow the end of a version ${p.version} hello of ${p.expected} bytes`,
    );
  }
}

function incomplete(p: Progress, n: number): ScsError {
  if (n === 0) return helloMalformed('empty', 'the connection closed without sending a byte');
  if (p.version === 3 && p.hashCount >= 0) {
    const inside = p.hashesSeen < p.hashCount ? p.hashesSeen + 1 : p.hashesSeen;
    return helloMalformed(
      'hash-count-past-end',
      `the hash count ${p.hashCount} runs past the end: the message ended after ${n} bytes, inside hash ${inside}`,
    );
  }
  const need = p.version === 2 ? `${HELLO_V2_LENGTH}` : `at least ${HELLO_V3_HEADER_LENGTH}`;
  return helloMalformed('truncated', `the connection closed after ${n} of ${need} bytes`);
}

const EMPTY = new Uint8Array(0);

const tooLong = (): ScsError =>
  helloMalformed('too-long', `more than ${HELLO_MAX_LENGTH} bytes (the longest possible hello) were sent`);

/**
 * An incremental decoder: feed it the bytes of one connection in whatever pieces TCP delivers
 * (`push`), then call `end()` when the peer closes. Every field is checked as soon as its bytes
 * arrive, so garbage is refused at the first bad byte, and it never holds more than the hello
 * can be (at most HELLO_MAX_LENGTH bytes). After a failure every call rethrows that failure.
 * It keeps a reference to the first chunk pushed (no copy): the caller must not change those
 * bytes before `end()` (socket reads are never reused).
 */
export class HelloDecoder {
  /**
   * The bytes so far. The first chunk is kept as it came (no copy: a hello nearly always
   * arrives in one read); a buffer of our own is made only when a second chunk arrives.
   */
  #buf: Uint8Array = EMPTY;
  #owned = false;
  #length = 0;
  readonly #progress = newProgress();
  #failure: ScsError | undefined;

  get bytesReceived(): number {
    return this.#length;
  }

  /** True once a whole hello has arrived (more bytes would be trailing garbage). */
  get complete(): boolean {
    return this.#failure === undefined && isComplete(this.#progress, this.#length);
  }

  push(chunk: Uint8Array): void {
    if (this.#failure) throw this.#failure;
    if (chunk.length === 0) return;
    if (this.#length + chunk.length > HELLO_MAX_LENGTH) this.#fail(tooLong());
    this.#append(chunk);
    try {
      advance(this.#buf, this.#length, this.#progress);
    } catch (error) {
      this.#fail(error as ScsError);
    }
  }

  /** The peer closed: returns the hello, or throws SCS_HELLO_MALFORMED saying what is missing. */
  end(): Hello {
    if (this.#failure) throw this.#failure;
    if (!isComplete(this.#progress, this.#length)) this.#fail(incomplete(this.#progress, this.#length));
    return buildHello(this.#buf, this.#progress);
  }

  #append(chunk: Uint8Array): void {
    const needed = this.#length + chunk.length;
    if (this.#length === 0) {
      this.#buf = chunk;
      this.#owned = false;
    } else {
      if (!this.#owned || needed > this.#buf.length) {
        const grown = new Uint8Array(
          Math.min(HELLO_MAX_LENGTH, Math.max(needed, HELLO_V2_LENGTH, this.#buf.length * 2)),
        );
        grown.set(this.#buf.subarray(0, this.#length));
        this.#buf = grown;
        this.#owned = true;
      }
      this.#buf.set(chunk, this.#length);
    }
    this.#length = needed;
  }

  #fail(error: ScsError): never {
    this.#failure = error;
    throw error;
  }
}

function checkPid(b: Uint8Array, at: number): void {
  let sum = 0;
  for (let i = 0; i < PID_LENGTH; i++) {
    const c = b[at + i] as number;
    if (!isSymbol(c)) {
      throw helloMalformed(
        'bad-pid',
        `PID byte ${i + 1} is 0x${c.toString(16).padStart(2, '0')}, not an uppercase letter or digit`,
      );
    }
    if (i < PID_LENGTH - 1) sum += c;
  }
  // The check character of protocol.md §2; parsePid (the authority) words the refusal.
  if (b[at + PID_LENGTH - 1] !== ALPHABET.charCodeAt(sum % 36)) {
    try {
      parsePid(pidText(b, at));
    } catch (cause) {
      throw helloMalformed('bad-pid', cause instanceof Error ? cause.message : 'invalid PID', cause);
    }
    throw helloMalformed('bad-pid', 'the PID check character is wrong');
  }
}

const pidText = (b: Uint8Array, at: number): string =>
  String.fromCharCode(
    b[at] as number,
    b[at + 1] as number,
    b[at + 2] as number,
    b[at + 3] as number,
    b[at + 4] as number,
    b[at + 5] as number,
    b[at + 6] as number,
    b[at + 7] as number,
  );

/** Returns the hash length after checking the algorithm and length bytes of one entry. */
function checkHashEntry(b: Uint8Array, at: number, index: number, count: number): number {
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
  return len;
}

/** Builds the value from a complete, already-checked message. */
function buildHello(b: Uint8Array, p: Progress): Hello {
  const adminCredentialsSet = u16(b, 0) === 1;
  const r = OFFSET_RETRY;
  // Little-endian u32 (§1); the top byte is multiplied so the value stays unsigned.
  const retryCount = u16(b, r) + (b[r + 2] as number) * 0x10000 + (b[r + 3] as number) * 0x1000000;
  const uuid = formatUuid(b, OFFSET_UUID);
  if (p.version === 2) return { version: 2, adminCredentialsSet, retryCount, uuid, pid: pidText(b, OFFSET_PID) as Pid };
  const hashes: CertHash[] = [];
  let at = HELLO_V3_HEADER_LENGTH;
  for (let i = 0; i < p.hashCount; i++) {
    const alg = HASH_ALGORITHMS[b[at] as number];
    const len = b[at + 1] as number;
    if (alg)
      hashes.push({ algorithm: alg.name, hash: Buffer.from(b.buffer, b.byteOffset + at + 2, len).toString('hex') });
    at += 2 + len;
  }
  return { version: 3, adminCredentialsSet, retryCount, uuid, hashes };
}

/** Decodes one whole message (what a connection delivered before it closed), without copying it. */
export function decodeHello(bytes: Uint8Array): Hello {
  const n = bytes.length;
  if (n > HELLO_MAX_LENGTH) throw tooLong();
  const p = newProgress();
  advance(bytes, n, p);
  if (!isComplete(p, n)) throw incomplete(p, n);
  return buildHello(bytes, p);
}
