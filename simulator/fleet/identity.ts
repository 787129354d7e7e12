import net from 'node:net';
import { ScsError } from '../../src/errors.ts';
import { checkChar } from '../../src/psk/checksum.ts';
import { ALPHABET } from '../../src/psk/checksum.ts';
import { uuidFromBytes } from '../hello/uuid.ts';
import { SeededRandom } from './prng.ts';

/**
 * Per-device identity, deterministic by (seed, index): the same seed gives the same UUIDs,
 * realms and addresses every run, so a state file or server log of one run matches the next.
 */

/** First device address. 127.0.0.0/8 is all local on Linux; this skips 127.0.0.1, 127.0.0.53, 127.0.1.1. */
export const DEFAULT_ADDRESS_BASE = '127.10.0.1';

function toInt(address: string): number {
  if (!net.isIPv4(address)) throw new ScsError('SCS_SIM_CONFIG_INVALID', `"${address}" is not an IPv4 address`);
  return address.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function toText(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

/**
 * The address of device `index`: counting up from `base` through 127/8, skipping addresses whose
 * last octet is 0 or 255 (bindable on Linux loopback, but they look like network/broadcast
 * addresses to people and some tools).
 */
export function deviceAddress(base: string, index: number): string {
  const b = toInt(base);
  const low = b & 0xff;
  if (b >>> 24 !== 127 || low === 0 || low === 255) {
    throw new ScsError('SCS_SIM_CONFIG_INVALID', `address base ${base} must be 127.x.y.z with z in 1..254`);
  }
  const v = (b >>> 8) * 254 + (low - 1) + index;
  const n = Math.floor(v / 254) * 256 + (v % 254) + 1;
  if (n >>> 24 !== 127 || n > 0x7fff_fffe) {
    throw new ScsError('SCS_SIM_CONFIG_INVALID', `device ${index} from base ${base} runs past 127.255.255.254`);
  }
  return toText(n);
}

/** A version-4-shaped UUID (RFC 4122 variant bits set) from the seed. */
export function deviceUuid(seed: string, index: number): string {
  const b = new SeededRandom(seed, 'uuid', index).bytes(16);
  // Version and variant live in text bytes 6 and 8, which are wire bytes 7 and 8 (protocol.md §1c).
  b[7] = ((b[7] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  return uuidFromBytes(b);
}

/** `Digest:` + 32 uppercase hex digits (protocol.md §4), from the seed. */
export function deviceDigestRealm(seed: string, index: number): string {
  return `Digest:${new SeededRandom(seed, 'realm', index).bytes(16).toString('hex').toUpperCase()}`;
}

export function deviceHostName(index: number): string {
  return `amt-sim-${String(index + 1).padStart(5, '0')}`;
}

/**
 * A valid PPS (check characters right) that differs from `notThis`, for the wrong-psk fault: the
 * device then holds a key the server does not, and the TLS-PSK handshake fails on the MAC.
 * Seeded, so the same devices get the same wrong keys. Not a secret worth protecting: it opens
 * nothing.
 */
export function wrongPps(seed: string, index: number, notThis: string): string {
  const r = new SeededRandom(seed, 'wrong-pps', index);
  for (;;) {
    let out = '';
    for (let g = 0; g < 8; g++) {
      let body = '';
      for (let k = 0; k < 3; k++) body += ALPHABET[r.below(36)] as string;
      out += body + checkChar(body);
    }
    if (out !== notThis) return out;
  }
}
