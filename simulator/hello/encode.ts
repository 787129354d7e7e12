import { ScsError } from '../../src/errors.ts';
import { uuidToBytes } from './uuid.ts';

/**
 * Encoders for the hello a device in setup mode sends to the SCS (protocol.md §1). All integers
 * little-endian. Version 2 is the PSK hello (§1a, exactly 32 bytes); version 3 carries
 * certificate hashes (§1b) and is here so the server's decoder can be tested with it.
 */
export const PSK_HELLO_LENGTH = 32;
export const PSK_HELLO_VERSION = 2;
export const PKI_HELLO_VERSION = 3;

/** §1a offsets. */
export const HelloOffset = {
  AdminCredentialsSet: 0,
  InterfaceVersion: 2,
  RetryCount: 4,
  Uuid: 8,
  Pid: 24,
  /** §1b: number of certificate hashes (version 3 only). */
  HashCount: 24,
} as const;

export interface HelloFields {
  /** 1 = the MEBx password was changed from its default. */
  adminCredentialsSet: boolean;
  /** Hellos this device already sent in this window (§1a, u32). */
  retryCount: number;
  /** Text form; written in SMBIOS byte order (§1c). */
  uuid: string;
  /** 8 characters 0-9/A-Z, no dash. */
  pid: string;
}

/** §1b hash algorithms and their digest lengths. */
export const CertHashAlgorithm = { Sha1: 1, Sha256: 2, Sha384: 3 } as const;
export type CertHashAlgorithm = (typeof CertHashAlgorithm)[keyof typeof CertHashAlgorithm];
const HASH_LENGTH: Readonly<Record<CertHashAlgorithm, number>> = { 1: 20, 2: 32, 3: 48 };

export interface CertHash {
  algorithm: CertHashAlgorithm;
  hash: Uint8Array;
}

function invalid(message: string): never {
  throw new ScsError('SCS_SIM_CONFIG_INVALID', `hello: ${message}`);
}

function writeCommon(out: Buffer, version: number, fields: Omit<HelloFields, 'pid'>): void {
  if (!Number.isInteger(fields.retryCount) || fields.retryCount < 0 || fields.retryCount > 0xffff_ffff) {
    invalid(`RetryCount ${fields.retryCount} is not a u32`);
  }
  out.writeUInt16LE(fields.adminCredentialsSet ? 1 : 0, HelloOffset.AdminCredentialsSet);
  out.writeUInt16LE(version, HelloOffset.InterfaceVersion);
  out.writeUInt32LE(fields.retryCount, HelloOffset.RetryCount);
  uuidToBytes(fields.uuid).copy(out, HelloOffset.Uuid);
}

/** The 32-byte version-2 PSK hello (§1a). */
export function encodePskHello(fields: HelloFields): Buffer {
  if (!/^[0-9A-Z]{8}$/.test(fields.pid)) invalid('PID must be 8 characters 0-9/A-Z without a dash');
  const out = Buffer.alloc(PSK_HELLO_LENGTH);
  writeCommon(out, PSK_HELLO_VERSION, fields);
  out.write(fields.pid, HelloOffset.Pid, 'ascii');
  return out;
}

/** The variable-length version-3 PKI hello (§1b): the §1a header without PID, then the hashes. */
export function encodePkiHello(fields: Omit<HelloFields, 'pid'>, hashes: readonly CertHash[]): Buffer {
  if (hashes.length > 255) invalid(`at most 255 certificate hashes, got ${hashes.length}`);
  const size = 25 + hashes.reduce((n, h) => n + 2 + h.hash.length, 0);
  const out = Buffer.alloc(size);
  writeCommon(out, PKI_HELLO_VERSION, fields);
  out.writeUInt8(hashes.length, HelloOffset.HashCount);
  let at = 25;
  for (const [i, h] of hashes.entries()) {
    const expected = HASH_LENGTH[h.algorithm] as number | undefined;
    if (expected === undefined) invalid(`hash ${i + 1}: unknown algorithm ${String(h.algorithm)}`);
    if (h.hash.length !== expected) invalid(`hash ${i + 1}: algorithm ${h.algorithm} needs ${expected} bytes`);
    out.writeUInt8(h.algorithm, at);
    out.writeUInt8(h.hash.length, at + 1);
    out.set(h.hash, at + 2);
    at += 2 + h.hash.length;
  }
  return out;
}
