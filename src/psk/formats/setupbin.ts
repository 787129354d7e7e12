/**
 * Intel AMT USB one-touch file `setup.bin` (protocol.md §2a; docs/formats.md, "setup.bin").
 * All integers little-endian. Facts beyond §2a come from Intel's BIOS/MEBx reference code for
 * USB provisioning (UsbProvision.c, MebxUsbProvision.c) and are cited where used.
 */
import { ScsError } from '../../errors.ts';
import { Secret } from '../../secret.ts';
import { parsePid, PID_LENGTH, type Pid } from '../pid.ts';
import { parsePps, PPS_DISPLAY_LENGTH, PPS_LENGTH, type Pps } from '../pps.ts';
import { canonicalPid, canonicalPps } from './canonical.ts';
import type { PskPair } from './pair.ts';

export type SetupBinVersion = 1 | 2 | 3 | 4;

/**
 * **(choice)** Format 2 (written as 2.1): the newest format every PSK-capable MEBx reads. PSK
 * setup exists on AMT 2.x-10.x; format 2.0 is read from AMT 3.0, 2.1 (host name, domain name,
 * provisioning server address and port) from AMT 4.0, 3.0 from AMT 6.0, and each MEBx reads the
 * older formats too. 3 and 4 add nothing the project writes. See docs/formats.md.
 */
export const DEFAULT_SETUPBIN_VERSION: SetupBinVersion = 2;

/** File-type GUIDs as raw bytes (protocol.md §2a). */
export const SETUPBIN_GUIDS: Readonly<Record<SetupBinVersion, Buffer>> = {
  1: Buffer.from('b516fb7187cbf94ab441ca7b383578f9', 'hex'),
  2: Buffer.from('96b28158cf6b724c8b91a15e512e99c4', 'hex'),
  3: Buffer.from('a7f7f6c689c4f64793ede2e5020da51d', 'hex'),
  4: Buffer.from('aaa93452e129a9448d4d081c07b96353', 'hex'),
};

/** major.minor the encoder writes for each GUID, and the minors a BIOS accepts with it (UsbProvision.c). */
const WRITTEN_VERSION: Readonly<Record<SetupBinVersion, readonly [number, number]>> = {
  1: [1, 0],
  2: [2, 1],
  3: [3, 0],
  4: [4, 0],
};
const ACCEPTED_MINORS: Readonly<Record<SetupBinVersion, readonly number[]>> = { 1: [0], 2: [0, 1], 3: [0], 4: [0] };

export const SETUPBIN_CHUNK_BYTES = 512;
/** Fixed part of the file header, before the module list. */
const FILE_HEADER_FIXED_BYTES = 40;
export const SETUPBIN_RECORD_HEADER_BYTES = 24;
const ENTRY_HEADER_BYTES = 8;
/** A MEBx refuses data records of more than 10 chunks (MebxUsbProvision.c). */
const MAX_RECORD_CHUNKS = 10;
/** "Scrambled" records store each body byte plus 17 mod 256 (protocol.md §2a). */
const SCRAMBLE_ADD = 17;

const FLAG_DO_NOT_CONSUME = 0x1;
const RECORD_FLAG_VALID = 0x1;
const RECORD_FLAG_SCRAMBLED = 0x2;
const RECORD_TYPE_INVALID = 0;
const RECORD_TYPE_DATA = 1;

/** Module and variable identifiers the project reads and writes (protocol.md §2a). */
export const SetupBinModule = { MeKernel: 1, IntelAmtCm: 2 } as const;
export const SetupBinVariable = {
  CurrentMebxPassword: 1,
  NewMebxPassword: 2,
  ManageabilityFeatureSelection: 3,
  Pid: 1,
  Pps: 2,
  HostName: 11,
  DomainName: 12,
  ProvisioningServerAddress: 17,
  ProvisioningServerPort: 18,
} as const;

/** MEBx limits (MebxUsbProvision.h: MAX_ASCII_PSWD_LENGTH; DNS label and name limits). */
const MAX_PASSWORD = 32;
const MAX_HOST_NAME = 63;
const MAX_DOMAIN_NAME = 255;

/** Values a record may carry besides the PSK. Options give file-wide defaults; a record's own values win. */
export interface SetupBinSettings {
  /** Module 1 var 1. Required: the MEBx logs in with it before applying anything. Factory default "admin". */
  readonly currentMebxPassword?: Secret<string>;
  /** Module 1 var 2. Required when the current password is "admin" (the MEBx insists on a change). */
  readonly newMebxPassword?: Secret<string>;
  /** Module 1 var 3 = 1: switch Intel AMT on if the platform ships it off. Not written unless true. */
  readonly enableAmt?: boolean;
  /** Module 2 var 11. */
  readonly hostName?: string;
  /** Module 2 var 12. */
  readonly domainName?: string;
  /** Module 2 var 17: IPv4 dotted quad. */
  readonly provisioningServerAddress?: string;
  /** Module 2 var 18. */
  readonly provisioningServerPort?: number;
}

export interface SetupBinRecordInput extends SetupBinSettings, PskPair {}

export interface SetupBinEncodeOptions extends SetupBinSettings {
  readonly version?: SetupBinVersion;
  /** Header flag bit 0 (format 2 and later): the BIOS never consumes records, so only record 1 is ever used. */
  readonly doNotConsume?: boolean;
  /** **(choice)** default true: keeps PPS and passwords out of a casual `strings` of the key. Obfuscation only. */
  readonly scramble?: boolean;
}

function inputInvalid(what: string): ScsError {
  return new ScsError('SCS_FORMAT_INPUT_INVALID', `setup.bin: ${what}`);
}

const pad4 = (n: number): number => (n + 3) & ~3;

function isPrintableAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** AMT strong password (protocol.md §6): 8-32 characters with upper, lower, digit and special. */
function isStrongPassword(p: string): boolean {
  return p.length >= 8 && /[A-Z]/.test(p) && /[a-z]/.test(p) && /[0-9]/.test(p) && /[^A-Za-z0-9]/.test(p);
}

function ipv4Bytes(text: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text.trim());
  if (m === null) return undefined;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? parts : undefined;
}

interface PlannedRecord {
  readonly pid: string;
  readonly pps: string;
  readonly current: string;
  readonly next: string | undefined;
  readonly enableAmt: boolean;
  readonly hostName: string | undefined;
  readonly domainName: string | undefined;
  readonly address: number[] | undefined;
  readonly port: number | undefined;
}

/**
 * Values shared by every record (the file-wide passwords, domain, server address) are checked
 * once per file, not once per record: 20,000 records repeat them 20,000 times.
 */
interface PlanMemo {
  /** Current/new password pairs already checked, by the Secret objects that hold them. */
  readonly passwords: WeakMap<object, WeakSet<object>>;
  readonly domainNames: Set<string>;
  readonly addresses: Map<string, number[] | undefined>;
}

function newPlanMemo(): PlanMemo {
  return { passwords: new WeakMap(), domainNames: new Set(), addresses: new Map() };
}

const NO_NEW_PASSWORD = {};

function plan(
  input: SetupBinRecordInput,
  options: SetupBinEncodeOptions,
  version: SetupBinVersion,
  n: number,
  memo: PlanMemo = newPlanMemo(),
): PlannedRecord {
  const at = `record ${n}`;
  const pps = input.pps.reveal();
  if (input.pid.length !== PID_LENGTH) throw inputInvalid(`${at}: the PID is not in canonical form`);
  if (pps.length !== PPS_LENGTH) throw inputInvalid(`${at}: the PPS is not in canonical form`);
  if (canonicalPid(input.pid) === undefined || canonicalPps(pps) === undefined) {
    try {
      parsePid(input.pid);
      parsePps(pps);
    } catch (e) {
      throw inputInvalid(`${at}: ${e instanceof ScsError ? e.message : 'invalid PID or PPS'}`);
    }
  }
  const currentSecret = input.currentMebxPassword ?? options.currentMebxPassword;
  const nextSecret = input.newMebxPassword ?? options.newMebxPassword;
  const current = currentSecret?.reveal();
  const next = nextSecret?.reveal();
  if (current === undefined) throw inputInvalid(`${at}: a current MEBx password is required (factory default "admin")`);
  const checked = currentSecret === undefined ? undefined : memo.passwords.get(currentSecret);
  if (checked?.has(nextSecret ?? NO_NEW_PASSWORD) !== true) {
    if (current.length === 0 || current.length > MAX_PASSWORD || !isPrintableAscii(current)) {
      throw inputInvalid(`${at}: the current MEBx password must be 1-32 printable ASCII characters`);
    }
    if (next === undefined && current === 'admin') {
      throw inputInvalid(`${at}: the current MEBx password is the factory default, so a new MEBx password is required`);
    }
    if (next !== undefined && (next.length > MAX_PASSWORD || !isPrintableAscii(next) || !isStrongPassword(next))) {
      throw inputInvalid(
        `${at}: the new MEBx password must be 8-32 printable ASCII characters with upper and lower case, a digit and a symbol`,
      );
    }
    if (currentSecret !== undefined) {
      const set = checked ?? new WeakSet<object>();
      set.add(nextSecret ?? NO_NEW_PASSWORD);
      memo.passwords.set(currentSecret, set);
    }
  }
  const hostName = input.hostName ?? options.hostName;
  const domainName = input.domainName ?? options.domainName;
  const addressText = input.provisioningServerAddress ?? options.provisioningServerAddress;
  const port = input.provisioningServerPort ?? options.provisioningServerPort;
  if (version === 1 && (hostName ?? domainName ?? addressText ?? port) !== undefined) {
    throw inputInvalid(
      `${at}: host name, domain name and provisioning server need format 2 or later (format 1 carries passwords and the PSK only)`,
    );
  }
  if (
    hostName !== undefined &&
    (hostName.length > MAX_HOST_NAME || !/^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/.test(hostName))
  ) {
    throw inputInvalid(`${at}: the host name must be one DNS label of 1-63 letters, digits and inner hyphens`);
  }
  if (
    domainName !== undefined &&
    !memo.domainNames.has(domainName) &&
    (domainName.length > MAX_DOMAIN_NAME || !/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(domainName))
  ) {
    throw inputInvalid(`${at}: the domain name must be 1-255 letters, digits, dots and hyphens`);
  }
  if (domainName !== undefined) memo.domainNames.add(domainName);
  let address: number[] | undefined;
  if (addressText !== undefined) {
    address = memo.addresses.has(addressText) ? memo.addresses.get(addressText) : ipv4Bytes(addressText);
    memo.addresses.set(addressText, address);
  }
  if (addressText !== undefined && address === undefined) {
    throw inputInvalid(`${at}: the provisioning server address must be an IPv4 dotted quad`);
  }
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 0xffff)) {
    throw inputInvalid(`${at}: the provisioning server port must be 1-65535`);
  }
  const planned: PlannedRecord = {
    pid: input.pid,
    pps,
    current,
    next,
    enableAmt: (input.enableAmt ?? options.enableAmt) === true,
    hostName,
    domainName,
    address,
    port,
  };
  const sized = (length: number | undefined): number => (length === undefined ? 0 : ENTRY_HEADER_BYTES + pad4(length));
  const bytes =
    SETUPBIN_RECORD_HEADER_BYTES +
    sized(current.length) +
    sized(next?.length) +
    sized(planned.enableAmt ? 1 : undefined) +
    sized(PID_LENGTH) +
    sized(PPS_LENGTH) +
    sized(hostName?.length) +
    sized(domainName?.length) +
    sized(address === undefined ? undefined : 4) +
    sized(port === undefined ? undefined : 2);
  if (bytes > SETUPBIN_CHUNK_BYTES) {
    throw inputInvalid(
      `${at}: the values need ${bytes} bytes but a record is ${SETUPBIN_CHUNK_BYTES}; shorten the names`,
    );
  }
  return planned;
}

/** Every byte + SCRAMBLE_ADD, as four bytes at a time in 32-bit words. */
const SCRAMBLE_WORD = SCRAMBLE_ADD * 0x01010101;

/**
 * Scrambles the body of the record at `base` (bytes 24..511): each byte + 17 mod 256, computed
 * on 32-bit words (the low 7 bits of each byte are added, with no carry into the next byte, and
 * the top bit is XORed back in). 122 words per record instead of 488 bytes; a test compares it
 * with the byte-by-byte rule.
 */
function scrambleRecordBody(out: Buffer, base: number): void {
  const from = base + SETUPBIN_RECORD_HEADER_BYTES;
  const to = base + SETUPBIN_CHUNK_BYTES;
  if ((out.byteOffset + from) % 4 !== 0) {
    for (let b = from; b < to; b++) out[b] = ((out[b] as number) + SCRAMBLE_ADD) & 0xff;
    return;
  }
  const words = new Uint32Array(out.buffer, out.byteOffset + from, (to - from) / 4);
  for (let i = 0; i < words.length; i++) {
    const x = words[i] as number;
    words[i] = (((x & 0x7f7f7f7f) + SCRAMBLE_WORD) ^ (x & 0x80808080)) >>> 0;
  }
}

/** Where the next entry of a record goes. */
interface Cursor {
  readonly out: Buffer;
  at: number;
}

/** Writes an entry header at the cursor and returns the offset of its value. */
function writeEntryHeader(c: Cursor, module: number, variable: number, length: number): number {
  c.out.writeUInt16LE(module, c.at);
  c.out.writeUInt16LE(variable, c.at + 2);
  c.out.writeUInt16LE(length, c.at + 4);
  const value = c.at + ENTRY_HEADER_BYTES;
  c.at = value + pad4(length);
  return value;
}

function writeText(c: Cursor, module: number, variable: number, value: string): void {
  c.out.write(value, writeEntryHeader(c, module, variable, value.length), 'latin1');
}

/**
 * Builds a whole setup.bin in one allocation: a 512-byte header chunk, then one 512-byte chunk per
 * record (20,000 records = 10,240,512 bytes). Entries are in module/variable order, which puts the
 * passwords and the manageability selection first, as older MEBx versions require.
 */
export function encodeSetupBin(records: readonly SetupBinRecordInput[], options: SetupBinEncodeOptions = {}): Buffer {
  const version = options.version ?? DEFAULT_SETUPBIN_VERSION;
  if (SETUPBIN_GUIDS[version] === undefined) throw inputInvalid(`version must be 1, 2, 3 or 4`);
  const doNotConsume = options.doNotConsume === true;
  const scramble = options.scramble ?? true;
  if (records.length === 0) throw inputInvalid('no records to write');
  if (doNotConsume && version === 1) throw inputInvalid('format 1 has no "do not consume" flag (format 2 and later)');
  if (doNotConsume && records.length > 1) {
    throw inputInvalid('a "do not consume" file only ever hands out record 1; write a single record');
  }
  const memo = newPlanMemo();
  const planned = records.map((r, i) => plan(r, options, version, i + 1, memo));

  const out = Buffer.alloc(SETUPBIN_CHUNK_BYTES * (records.length + 1));
  // File header (protocol.md §2a table). Every record carries module 1 (password) and module 2 (PID).
  const modules = [SetupBinModule.MeKernel, SetupBinModule.IntelAmtCm];
  const [major, minor] = WRITTEN_VERSION[version];
  SETUPBIN_GUIDS[version].copy(out, 0);
  out.writeUInt16LE(1, 16);
  out.writeUInt16LE(FILE_HEADER_FIXED_BYTES + 2 * (modules.length + 1), 18);
  out.writeUInt32LE(0, 20);
  out[24] = major;
  out[25] = minor;
  out.writeUInt16LE(doNotConsume ? FLAG_DO_NOT_CONSUME : 0, 26);
  out.writeUInt32LE(records.length, 28);
  out.writeUInt32LE(0, 32);
  out.writeUInt16LE(1, 36);
  modules.forEach((m, i) => out.writeUInt16LE(m, FILE_HEADER_FIXED_BYTES + 2 * i)); // terminator: already zero

  for (let i = 0; i < planned.length; i++) {
    const rec = planned[i] as PlannedRecord;
    const base = SETUPBIN_CHUNK_BYTES * (i + 1);
    out.writeUInt32LE(RECORD_TYPE_DATA, base);
    out.writeUInt32LE(RECORD_FLAG_VALID | (scramble ? RECORD_FLAG_SCRAMBLED : 0), base + 4);
    out.writeUInt16LE(1, base + 16);
    out.writeUInt16LE(SETUPBIN_RECORD_HEADER_BYTES, base + 18);
    out.writeUInt32LE(i + 1, base + 20);
    const cursor: Cursor = { out, at: base + SETUPBIN_RECORD_HEADER_BYTES };
    writeText(cursor, SetupBinModule.MeKernel, SetupBinVariable.CurrentMebxPassword, rec.current);
    if (rec.next !== undefined) writeText(cursor, SetupBinModule.MeKernel, SetupBinVariable.NewMebxPassword, rec.next);
    if (rec.enableAmt)
      out[writeEntryHeader(cursor, SetupBinModule.MeKernel, SetupBinVariable.ManageabilityFeatureSelection, 1)] = 1;
    writeText(cursor, SetupBinModule.IntelAmtCm, SetupBinVariable.Pid, rec.pid);
    writeText(cursor, SetupBinModule.IntelAmtCm, SetupBinVariable.Pps, rec.pps);
    if (rec.hostName !== undefined)
      writeText(cursor, SetupBinModule.IntelAmtCm, SetupBinVariable.HostName, rec.hostName);
    if (rec.domainName !== undefined)
      writeText(cursor, SetupBinModule.IntelAmtCm, SetupBinVariable.DomainName, rec.domainName);
    if (rec.address !== undefined) {
      // The MEBx prints the address as value[3].value[2].value[1].value[0] (MebxUsbProvision.c,
      // ConvertIpBinaryToString): the 32-bit address little-endian, i.e. network order reversed.
      const v = writeEntryHeader(cursor, SetupBinModule.IntelAmtCm, SetupBinVariable.ProvisioningServerAddress, 4);
      rec.address.forEach((octet, k) => (out[v + 3 - k] = octet));
    }
    if (rec.port !== undefined) {
      out.writeUInt16LE(
        rec.port,
        writeEntryHeader(cursor, SetupBinModule.IntelAmtCm, SetupBinVariable.ProvisioningServerPort, 2),
      );
    }
    // The zero module/variable that ends the entries is the zero fill of the chunk.
    if (scramble) scrambleRecordBody(out, base);
  }
  return out;
}

export interface SetupBinHeader {
  readonly version: SetupBinVersion;
  readonly majorVersion: number;
  readonly minorVersion: number;
  /** Raw header flags; bit 0 means "do not consume" from format 2 on. */
  readonly flags: number;
  readonly doNotConsume: boolean;
  readonly recordCount: number;
  /** Records the BIOS has handed to a device: it increments this after each (UsbProvision.c). */
  readonly consumedCount: number;
  readonly headerChunks: number;
  readonly recordChunks: number;
  readonly headerBytes: number;
  readonly moduleIds: readonly number[];
}

export interface SetupBinSkippedEntry {
  readonly module: number;
  readonly variable: number;
  readonly length: number;
  /** Offset of the entry in the file. */
  readonly offset: number;
}

export interface SetupBinRecord {
  /** 1-based record number, as stored (checked to equal the record's position). */
  readonly number: number;
  /** Offset of the record's first byte in the file. */
  readonly offset: number;
  readonly type: number;
  readonly valid: boolean;
  readonly scrambled: boolean;
  /** The body is all zero: what the BIOS leaves of a consumed record (PID and PPS are gone). */
  readonly wiped: boolean;
  /** Handed to a device: number <= consumedCount, or valid bit cleared (docs/formats.md, "Reconciling"). */
  readonly consumed: boolean;
  readonly pid?: Pid;
  readonly pps?: Secret<Pps>;
  readonly currentMebxPassword?: Secret<string>;
  readonly newMebxPassword?: Secret<string>;
  readonly enableAmt?: boolean;
  readonly hostName?: string;
  readonly domainName?: string;
  readonly provisioningServerAddress?: string;
  readonly provisioningServerPort?: number;
  /** Entries this decoder does not interpret (other modules, other variables, IPv6 server addresses). */
  readonly skipped: readonly SetupBinSkippedEntry[];
}

export interface SetupBinFile extends SetupBinHeader {
  readonly records: readonly SetupBinRecord[];
}

function malformed(what: string, record: number, offset: number): ScsError {
  const where = record === 0 ? 'header' : `record ${record}`;
  return new ScsError('SCS_SETUPBIN_MALFORMED', `setup.bin ${where} at offset ${offset}: ${what}`, {
    details: { record, offset },
  });
}

function versionOf(bytes: Buffer): SetupBinVersion | undefined {
  for (const v of [1, 2, 3, 4] as const) {
    if (bytes.subarray(0, 16).equals(SETUPBIN_GUIDS[v])) return v;
  }
  return undefined;
}

export function isSetupBinGuid(bytes: Buffer): boolean {
  return bytes.length >= 16 && versionOf(bytes) !== undefined;
}

export function decodeSetupBinHeader(bytes: Buffer): SetupBinHeader {
  if (bytes.length < SETUPBIN_CHUNK_BYTES) {
    throw malformed(`the file has ${bytes.length} bytes, less than the ${SETUPBIN_CHUNK_BYTES}-byte header`, 0, 0);
  }
  const version = versionOf(bytes);
  if (version === undefined) throw malformed('unknown file-type GUID (not a setup.bin of format 1-4)', 0, 0);
  const majorVersion = bytes[24] as number;
  const minorVersion = bytes[25] as number;
  if (majorVersion !== version || !ACCEPTED_MINORS[version].includes(minorVersion)) {
    throw malformed(`version ${majorVersion}.${minorVersion} does not match the format ${version} GUID`, 0, 24);
  }
  const headerChunks = bytes.readUInt16LE(16);
  const headerBytes = bytes.readUInt16LE(18);
  const flags = bytes.readUInt16LE(26);
  const recordCount = bytes.readUInt32LE(28);
  const consumedCount = bytes.readUInt32LE(32);
  const recordChunks = bytes.readUInt16LE(36);
  if (headerChunks < 1) throw malformed('the header occupies 0 chunks', 0, 16);
  const headerSize = headerChunks * SETUPBIN_CHUNK_BYTES;
  if (headerBytes < FILE_HEADER_FIXED_BYTES + 2 || headerBytes > headerSize) {
    throw malformed(`header byte count ${headerBytes} is outside ${FILE_HEADER_FIXED_BYTES + 2}-${headerSize}`, 0, 18);
  }
  if (bytes.readUInt32LE(20) !== 0) throw malformed('the header record number is not 0', 0, 20);
  if (recordChunks < 1 || recordChunks > MAX_RECORD_CHUNKS) {
    throw malformed(`chunks per data record is ${recordChunks}, expected 1-${MAX_RECORD_CHUNKS}`, 0, 36);
  }
  if (consumedCount > recordCount) {
    throw malformed(`${consumedCount} records consumed but the file has ${recordCount}`, 0, 32);
  }
  // Intel's BIOS refuses a file whose size is not exactly header + records (UsbProvision.c).
  const expected = (headerChunks + recordCount * recordChunks) * SETUPBIN_CHUNK_BYTES;
  if (bytes.length !== expected) {
    const why =
      bytes.length < expected
        ? `truncated: ${bytes.length} bytes, ${recordCount} records need ${expected}`
        : `${bytes.length - expected} bytes after the last of ${recordCount} records`;
    throw malformed(why, 0, Math.min(bytes.length, expected));
  }
  const moduleIds: number[] = [];
  for (let at = FILE_HEADER_FIXED_BYTES; ; at += 2) {
    if (at + 2 > headerSize) throw malformed('the module list has no 0 terminator', 0, FILE_HEADER_FIXED_BYTES);
    const id = bytes.readUInt16LE(at);
    if (id === 0) break;
    moduleIds.push(id);
  }
  return {
    version,
    majorVersion,
    minorVersion,
    flags,
    doNotConsume: version >= 2 && (flags & FLAG_DO_NOT_CONSUME) !== 0,
    recordCount,
    consumedCount,
    headerChunks,
    recordChunks,
    headerBytes,
    moduleIds,
  };
}

interface MutableRecord {
  number: number;
  offset: number;
  type: number;
  valid: boolean;
  scrambled: boolean;
  wiped: boolean;
  consumed: boolean;
  pid?: Pid;
  pps?: Secret<Pps>;
  currentMebxPassword?: Secret<string>;
  newMebxPassword?: Secret<string>;
  enableAmt?: boolean;
  hostName?: string;
  domainName?: string;
  provisioningServerAddress?: string;
  provisioningServerPort?: number;
  skipped: SetupBinSkippedEntry[];
}

/** Strips NUL padding some writers add after a string value. */
function asciiValue(body: Buffer, start: number, length: number): string {
  let end = start + length;
  while (end > start && body[end - 1] === 0) end--;
  return body.toString('latin1', start, end);
}

/**
 * Decodes a whole setup.bin. Every read is bounds-checked against the file and the record, every
 * loop advances by at least 8 bytes, and any structural fault is `SCS_SETUPBIN_MALFORMED` naming
 * the record and the file offset. Unknown modules and variables are listed in `skipped`.
 */
export function decodeSetupBin(bytes: Buffer): SetupBinFile {
  const header = decodeSetupBinHeader(bytes);
  const recordSize = header.recordChunks * SETUPBIN_CHUNK_BYTES;
  const body = Buffer.alloc(recordSize); // descrambled copy of one record, reused
  const records: SetupBinRecord[] = [];
  for (let i = 0; i < header.recordCount; i++) {
    const number = i + 1;
    const offset = (header.headerChunks + i * header.recordChunks) * SETUPBIN_CHUNK_BYTES;
    const type = bytes.readUInt32LE(offset);
    const flags = bytes.readUInt32LE(offset + 4);
    if (type !== RECORD_TYPE_DATA && type !== RECORD_TYPE_INVALID) {
      throw malformed(`record type ${type} is neither 1 (data) nor 0 (invalid)`, number, offset);
    }
    if (bytes.readUInt16LE(offset + 16) !== header.recordChunks) {
      throw malformed(
        `the record says ${bytes.readUInt16LE(offset + 16)} chunks, the header ${header.recordChunks}`,
        number,
        offset + 16,
      );
    }
    const headerBytes = bytes.readUInt16LE(offset + 18);
    if (headerBytes < SETUPBIN_RECORD_HEADER_BYTES || headerBytes > recordSize) {
      throw malformed(`record header byte count ${headerBytes} is outside 24-${recordSize}`, number, offset + 18);
    }
    const stored = bytes.readUInt32LE(offset + 20);
    if (stored !== number) throw malformed(`the record is numbered ${stored}`, number, offset + 20);

    const valid = (flags & RECORD_FLAG_VALID) !== 0;
    const scrambled = (flags & RECORD_FLAG_SCRAMBLED) !== 0;
    let wiped = true;
    for (let b = offset + headerBytes; b < offset + recordSize; b++) {
      if (bytes[b] !== 0) {
        wiped = false;
        break;
      }
    }
    const rec: MutableRecord = {
      number,
      offset,
      type,
      valid,
      scrambled,
      wiped,
      consumed: !valid || number <= header.consumedCount,
      skipped: [],
    };
    // The BIOS zeroes a consumed record's body without descrambling (UsbProvision.c), so a wiped
    // record has no entries to read even when its scrambled bit is still set.
    if (!wiped) readEntries(bytes, offset, headerBytes, recordSize, scrambled, body, rec);
    records.push(rec);
  }
  return { ...header, records };
}

function readEntries(
  bytes: Buffer,
  offset: number,
  headerBytes: number,
  recordSize: number,
  scrambled: boolean,
  body: Buffer,
  rec: MutableRecord,
): void {
  bytes.copy(body, 0, offset, offset + recordSize);
  if (scrambled) {
    for (let b = headerBytes; b < recordSize; b++) body[b] = ((body[b] as number) - SCRAMBLE_ADD) & 0xff;
  }
  const seen = new Set<number>();
  let at = headerBytes;
  // Entries end at a zero module or variable, or when the record is full (protocol.md §2a).
  while (at + 4 <= recordSize) {
    const module = body.readUInt16LE(at);
    const variable = body.readUInt16LE(at + 2);
    if (module === 0 || variable === 0) break;
    const where = offset + at;
    if (at + ENTRY_HEADER_BYTES > recordSize) {
      throw malformed(`entry ${module}/${variable} header runs past the end of the record`, rec.number, where);
    }
    const length = body.readUInt16LE(at + 4);
    const value = at + ENTRY_HEADER_BYTES;
    if (value + length > recordSize) {
      throw malformed(
        `entry ${module}/${variable} value of ${length} bytes runs past the end of the record`,
        rec.number,
        where,
      );
    }
    const key = module * 0x10000 + variable;
    if (seen.has(key)) throw malformed(`entry ${module}/${variable} appears twice`, rec.number, where);
    seen.add(key);
    readEntry(body, module, variable, value, length, where, rec);
    at = value + pad4(length);
  }
}

function readEntry(
  body: Buffer,
  module: number,
  variable: number,
  value: number,
  length: number,
  where: number,
  rec: MutableRecord,
): void {
  const bad = (what: string): ScsError => malformed(what, rec.number, where);
  if (module === SetupBinModule.MeKernel) {
    switch (variable) {
      case SetupBinVariable.CurrentMebxPassword:
      case SetupBinVariable.NewMebxPassword: {
        if (length > MAX_PASSWORD) throw bad(`MEBx password of ${length} bytes (at most ${MAX_PASSWORD})`);
        const password = new Secret(asciiValue(body, value, length));
        if (variable === SetupBinVariable.CurrentMebxPassword) rec.currentMebxPassword = password;
        else rec.newMebxPassword = password;
        return;
      }
      case SetupBinVariable.ManageabilityFeatureSelection:
        if (length !== 1) throw bad(`manageability feature selection of ${length} bytes (expected 1)`);
        rec.enableAmt = body[value] === 1;
        return;
    }
  } else if (module === SetupBinModule.IntelAmtCm) {
    switch (variable) {
      case SetupBinVariable.Pid: {
        const text = asciiValue(body, value, length);
        if (text.length !== PID_LENGTH && text.length !== PID_LENGTH + 1) {
          throw bad(`PID of ${text.length} bytes (expected ${PID_LENGTH})`);
        }
        try {
          rec.pid = parsePid(text);
        } catch (e) {
          throw bad(e instanceof ScsError ? e.message : 'invalid PID');
        }
        return;
      }
      case SetupBinVariable.Pps: {
        const text = asciiValue(body, value, length);
        if (text.length !== PPS_LENGTH && text.length !== PPS_DISPLAY_LENGTH) {
          throw bad(`PPS of ${text.length} bytes (expected ${PPS_LENGTH})`);
        }
        try {
          rec.pps = new Secret(parsePps(text));
        } catch (e) {
          // parsePps never echoes the passphrase (protocol.md §2).
          throw bad(e instanceof ScsError ? e.message : 'invalid PPS');
        }
        return;
      }
      case SetupBinVariable.HostName:
        if (length > MAX_HOST_NAME + 1) throw bad(`host name of ${length} bytes (at most ${MAX_HOST_NAME})`);
        rec.hostName = asciiValue(body, value, length);
        return;
      case SetupBinVariable.DomainName:
        if (length > MAX_DOMAIN_NAME + 1) throw bad(`domain name of ${length} bytes (at most ${MAX_DOMAIN_NAME})`);
        rec.domainName = asciiValue(body, value, length);
        return;
      case SetupBinVariable.ProvisioningServerAddress:
        if (length === 4) {
          // Little-endian 32-bit address (see the encoder).
          rec.provisioningServerAddress = `${body[value + 3]}.${body[value + 2]}.${body[value + 1]}.${body[value]}`;
          return;
        }
        if (length !== 16) throw bad(`provisioning server address of ${length} bytes (expected 4, or 16 for IPv6)`);
        break; // IPv6: legal, not interpreted here
      case SetupBinVariable.ProvisioningServerPort:
        if (length !== 2) throw bad(`provisioning server port of ${length} bytes (expected 2)`);
        rec.provisioningServerPort = body.readUInt16LE(value);
        return;
    }
  }
  rec.skipped.push({ module, variable, length, offset: where });
}
