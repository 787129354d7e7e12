import { ScsError } from '../../src/errors.ts';
import { parsePid, type Pid } from '../../src/psk/pid.ts';
import { parsePps, type Pps } from '../../src/psk/pps.ts';
import { Secret } from '../../src/secret.ts';
import { normalizeUuid } from '../hello/uuid.ts';
import { DEFAULT_ROOT_HASHES, userHash, type TrustedHash } from './pki.ts';

/**
 * Identity and setup data of one simulated device, as JSON (the fleet passes these). Secrets
 * (`pps`, `mebxPassword`, `admin.digestHa1`, `tlsIdentity.keyPem`) are plain strings here because
 * this is the file format; the device keeps them in `Secret`s and `snapshot()` never shows them.
 */
export interface DeviceSetup {
  /** SMBIOS UUID, text form (protocol.md §1c). */
  uuid: string;
  /** Current PID / PPS (what MEBx or setup.bin loaded). Required in state In. */
  pid?: string;
  pps?: string;
  /** MEBx password; in setup mode it is also the `admin` Digest password. Default `admin` (factory). */
  mebxPassword?: string;
  /** Default 6.2.0 (protocol.md §7). */
  amtVersion?: string;
  hostName?: string;
  domainName?: string;
  /** `Digest:` + 32 uppercase hex digits; random when absent. */
  digestRealm?: string;
  /** Default In when a PID/PPS is given, else Pre. */
  provisioningState?: 'Pre' | 'In' | 'Post' | 0 | 1 | 2;
  /** Default 0 in Pre, 1 (Enterprise) in In and Post. */
  provisioningMode?: number;
  /** CIM_SoftwareIdentity extras. */
  buildNumber?: string;
  sku?: string;
  /** Admin account after SetAdminAclEntryEx (Post): HA1 = MD5(user:realm:password) as 32 hex digits. */
  admin?: { username: string; digestHa1: string };
  /** TLS served on 16993 in Post (what an issued certificate left behind). */
  tlsIdentity?: { keyPem: string; certPem: string };
  /**
   * Certificate-based remote configuration (AMT 7+): with this, a device in In without a PSK
   * sends version 3 hellos with its trusted root hashes (docs/pki.md). `dnsSuffix`: the PKI DNS
   * suffix set in MEBx (default: `domainName`, as DHCP option 15 gives it). `userHashes`: SHA-256
   * root hashes a technician added. `defaultHashes` (default true): Intel's shipped list.
   */
  pki?: { dnsSuffix?: string; userHashes?: string[]; defaultHashes?: boolean };
}

export const ProvisioningState = { Pre: 0, In: 1, Post: 2 } as const;
export type ProvisioningStateName = keyof typeof ProvisioningState;
export type ProvisioningStateValue = (typeof ProvisioningState)[ProvisioningStateName];

export function stateName(v: ProvisioningStateValue): ProvisioningStateName {
  return v === 0 ? 'Pre' : v === 1 ? 'In' : 'Post';
}

export const DEFAULT_AMT_VERSION = '6.2.0';
/** Default of a device set up for certificate-based setup, which AMT offers from version 7 on. */
export const DEFAULT_PKI_AMT_VERSION = '11.8.50';

/** The major number of a MAJOR.MINOR.BUILD version. */
export function amtMajor(version: string): number {
  return Number(version.split('.')[0]);
}
export const DEFAULT_MEBX_PASSWORD = 'admin';

export interface Psk {
  pid: Pid;
  pps: Secret<Pps>;
}

/** The validated, typed form of a DeviceSetup. */
export interface ResolvedSetup {
  uuid: string;
  psk: Psk | undefined;
  mebxPassword: Secret<string>;
  amtVersion: string;
  hostName: string;
  domainName: string;
  digestRealm: string | undefined;
  provisioningState: ProvisioningStateValue;
  provisioningMode: number;
  buildNumber: string;
  sku: string;
  admin: { username: string; ha1: Buffer } | undefined;
  tlsIdentity: { keyPem: Secret<string>; certPem: string } | undefined;
  pki: { dnsSuffix: string | undefined; hashes: TrustedHash[] } | undefined;
}

const REALM = /^Digest:[0-9A-F]{32}$/;
const VERSION = /^\d{1,2}\.\d{1,2}\.\d{1,4}$/;
const HOST_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export function isValidHostName(name: string): boolean {
  return name === '' || HOST_LABEL.test(name);
}

export function isValidDomainName(name: string): boolean {
  return name === '' || (name.length <= 255 && name.split('.').every((l) => HOST_LABEL.test(l)));
}

/** AMT user names: 1..16 characters of 7-bit printable ASCII. */
export function isValidUsername(name: string): boolean {
  return /^[\x21-\x7e]{1,16}$/.test(name);
}

function fail(field: string, why: string): never {
  throw new ScsError('SCS_SIM_CONFIG_INVALID', `device setup: ${field} ${why}`, { details: { field } });
}

function str(o: Record<string, unknown>, field: string): string | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(field, 'must be a string');
  return v;
}

/**
 * Validates a setup object (typically parsed JSON). PID and PPS are checked the way firmware
 * checks them when they are typed into MEBx: parsePid / parsePps, so a bad check character
 * fails here with SCS_PID_INVALID / SCS_PPS_INVALID. Everything else: SCS_SIM_CONFIG_INVALID
 * naming the field (never its value when the field is secret).
 */
export function resolveSetup(input: unknown): ResolvedSetup {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) fail('(root)', 'must be an object');
  const o = input as Record<string, unknown>;
  const known = new Set([
    'uuid',
    'pid',
    'pps',
    'mebxPassword',
    'amtVersion',
    'hostName',
    'domainName',
    'digestRealm',
    'provisioningState',
    'provisioningMode',
    'buildNumber',
    'sku',
    'admin',
    'tlsIdentity',
    'pki',
  ]);
  for (const k of Object.keys(o)) if (!known.has(k)) fail(k, 'is not a known setting');

  const uuidText = str(o, 'uuid');
  if (uuidText === undefined) fail('uuid', 'is required');
  const uuid = normalizeUuid(uuidText);

  const pidText = str(o, 'pid');
  const ppsText = str(o, 'pps');
  if ((pidText === undefined) !== (ppsText === undefined)) fail('pid/pps', 'must be given together');
  const psk =
    pidText !== undefined && ppsText !== undefined
      ? { pid: parsePid(pidText), pps: new Secret(parsePps(ppsText)) }
      : undefined;

  const mebx = str(o, 'mebxPassword') ?? DEFAULT_MEBX_PASSWORD;
  if (!/^[\x20-\x7e]{1,32}$/.test(mebx)) fail('mebxPassword', 'must be 1..32 printable ASCII characters');

  const amtVersion = str(o, 'amtVersion') ?? (o.pki === undefined ? DEFAULT_AMT_VERSION : DEFAULT_PKI_AMT_VERSION);
  if (!VERSION.test(amtVersion)) fail('amtVersion', `"${amtVersion}" is not MAJOR.MINOR.BUILD`);

  const hostName = str(o, 'hostName') ?? '';
  if (!isValidHostName(hostName)) fail('hostName', `"${hostName}" is not a DNS label`);
  const domainName = str(o, 'domainName') ?? '';
  if (!isValidDomainName(domainName)) fail('domainName', `"${domainName}" is not a DNS name`);

  const digestRealm = str(o, 'digestRealm');
  if (digestRealm !== undefined && !REALM.test(digestRealm)) {
    fail('digestRealm', `"${digestRealm}" is not "Digest:" followed by 32 uppercase hexadecimal digits`);
  }

  const rawState = o.provisioningState;
  let provisioningState: ProvisioningStateValue;
  if (rawState === undefined) provisioningState = psk === undefined ? 0 : 1;
  else if (rawState === 'Pre' || rawState === 0) provisioningState = 0;
  else if (rawState === 'In' || rawState === 1) provisioningState = 1;
  else if (rawState === 'Post' || rawState === 2) provisioningState = 2;
  else fail('provisioningState', 'must be Pre, In, Post, 0, 1 or 2');
  let pki: ResolvedSetup['pki'];
  if (o.pki !== undefined) {
    const p = o.pki as Record<string, unknown>;
    if (p === null || typeof p !== 'object') fail('pki', 'must be an object');
    const dnsSuffix = p.dnsSuffix;
    if (dnsSuffix !== undefined && (typeof dnsSuffix !== 'string' || !isValidDomainName(dnsSuffix)))
      fail('pki.dnsSuffix', 'must be a DNS name');
    const users = p.userHashes ?? [];
    if (!Array.isArray(users) || !users.every((h) => typeof h === 'string' && /^[0-9a-fA-F]{64}$/.test(h)))
      fail('pki.userHashes', 'must be SHA-256 hashes (64 hexadecimal digits)');
    const hashes = [
      ...(p.defaultHashes === false ? [] : DEFAULT_ROOT_HASHES),
      ...(users as string[]).map((h, i) => userHash(h.toLowerCase(), `user-added ${i + 1}`)),
    ];
    pki = { dnsSuffix, hashes };
    // IPS_HostBasedSetupService (AdminSetup) exists from AMT 7 on (protocol.md §6 "Related").
    if (amtMajor(amtVersion) < 7)
      fail('amtVersion', `certificate-based setup (pki) needs AMT 7 or later, got ${amtVersion}`);
  }
  if (provisioningState === 1 && psk === undefined && pki === undefined)
    fail('provisioningState', 'In needs a pid and pps (PSK) or pki settings (certificate-based setup)');

  const rawMode = o.provisioningMode;
  if (
    rawMode !== undefined &&
    (typeof rawMode !== 'number' || !Number.isInteger(rawMode) || rawMode < 0 || rawMode > 4)
  ) {
    fail('provisioningMode', 'must be an integer 0..4');
  }
  const provisioningMode = rawMode ?? (provisioningState === 0 ? 0 : 1);

  const buildNumber = str(o, 'buildNumber') ?? '1051';
  const sku = str(o, 'sku') ?? '16392';

  let admin: ResolvedSetup['admin'];
  if (o.admin !== undefined) {
    const a = o.admin as Record<string, unknown>;
    if (a === null || typeof a !== 'object') fail('admin', 'must be an object');
    const username = a.username;
    const ha1 = a.digestHa1;
    if (typeof username !== 'string' || !isValidUsername(username))
      fail('admin.username', 'must be 1..16 ASCII characters');
    if (typeof ha1 !== 'string' || !/^[0-9a-fA-F]{32}$/.test(ha1))
      fail('admin.digestHa1', 'must be 32 hexadecimal digits');
    admin = { username, ha1: Buffer.from(ha1, 'hex') };
  }

  let tlsIdentity: ResolvedSetup['tlsIdentity'];
  if (o.tlsIdentity !== undefined) {
    const t = o.tlsIdentity as Record<string, unknown>;
    if (t === null || typeof t !== 'object') fail('tlsIdentity', 'must be an object');
    if (typeof t.keyPem !== 'string' || typeof t.certPem !== 'string') fail('tlsIdentity', 'needs keyPem and certPem');
    tlsIdentity = { keyPem: new Secret(t.keyPem), certPem: t.certPem };
  }

  return {
    uuid,
    psk,
    mebxPassword: new Secret(mebx),
    amtVersion,
    hostName,
    domainName,
    digestRealm,
    provisioningState,
    provisioningMode,
    buildNumber,
    sku,
    admin,
    tlsIdentity,
    pki,
  };
}
