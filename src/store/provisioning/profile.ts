import { ScsError } from '../../errors.ts';
import type { Secret } from '../../secret.ts';

/**
 * Provisioning profiles: what the server does to a device (docs/provisioning.md, "Profiles").
 * Settings are plain JSON and may be printed; the passwords a profile carries are kept apart,
 * sealed, and only ever handled as `Secret`s.
 */

export const DEFAULT_PROFILE_NAME = 'default';
const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

export interface ProfileSettings {
  /** Admin account set with SetAdminAclEntryEx (§6 step 2): 1-16 printable 7-bit ASCII. */
  readonly adminUser: string;
  /** `random`: a strong password per device, escrowed; `fixed`: the profile's adminPassword secret. */
  readonly adminPassword: 'random' | 'fixed';
  /** SetMEBxPassword (§6 step 3): `keep` skips it; `random` per device (escrowed); `fixed`: the newMebxPassword secret. */
  readonly mebxPassword: 'keep' | 'random' | 'fixed';
  /** Host name: `{uuid}`, `{uuid8}` (first 8 hex digits), `{hostname}` (the device's own) and literal text. */
  readonly hostNamePattern: string;
  /** DNS domain to set; empty keeps the device's. */
  readonly domainName: string;
  /** GetLowAccuracyTimeSynch + SetHighAccuracyTimeSynch (§6 step 4). */
  readonly timeSync: boolean;
  /** Device TLS certificate from the SCS CA and TLS on (§6 step 6); verification then runs over TLS. */
  readonly tls: boolean;
  readonly certificateValidityDays: number;
  /** SetTLSPSK with a new PSK from the store (§6 step 7). */
  readonly renewPsk: boolean;
  /** No available PSK left for renewal: fail the job (SCS_NO_RENEWAL_PSK) or provision without one. */
  readonly onNoRenewalPsk: 'fail' | 'skip';
}

export const DEFAULT_PROFILE_SETTINGS: ProfileSettings = {
  adminUser: 'admin',
  adminPassword: 'random',
  mebxPassword: 'keep',
  hostNamePattern: 'amt-{uuid8}',
  domainName: '',
  timeSync: true,
  tls: true,
  certificateValidityDays: 825,
  renewPsk: true,
  onNoRenewalPsk: 'fail',
};

export const PROFILE_SECRET_NAMES = ['currentMebxPassword', 'adminPassword', 'newMebxPassword'] as const;
/**
 * currentMebxPassword: the MEBx password the devices have now (the `admin` Digest password in
 * setup mode, §6); adminPassword: the fixed admin password; newMebxPassword: the fixed new MEBx password.
 */
export type ProfileSecretName = (typeof PROFILE_SECRET_NAMES)[number];
export type ProfileSecretValues = Partial<Record<ProfileSecretName, Secret<string>>>;

export interface ProfileInput {
  readonly settings?: Readonly<Record<string, unknown>>;
  /** A Secret sets the value, null removes it, absent keeps it. */
  readonly secrets?: Partial<Record<ProfileSecretName, Secret<string> | null>>;
}

export interface ProfileRow {
  readonly name: string;
  readonly settings: ProfileSettings;
  /** Which secrets are set (never their values). */
  readonly secretsSet: Readonly<Record<ProfileSecretName, boolean>>;
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

function invalid(field: string, why: string): ScsError {
  return new ScsError('SCS_PROFILE_INVALID', `profile field ${field}: ${why}`, { details: { field } });
}

export function checkProfileName(name: string): string {
  if (!PROFILE_NAME.test(name)) {
    throw new ScsError(
      'SCS_PROFILE_INVALID',
      `profile name "${name}" is invalid: 1-64 characters of A-Z a-z 0-9 . _ : -, starting with a letter or digit`,
      { details: { field: 'name' } },
    );
  }
  return name;
}

const PLACEHOLDER = /\{([a-z0-9]+)\}/g;
const PLACEHOLDERS = new Set(['uuid', 'uuid8', 'hostname']);
const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const SAMPLE_UUID = '4c4c4544-0035-5910-8051-b8c04f4e5a31';

/** A DNS label (RFC 1035 §2.3.1, digits allowed first as RFC 1123 permits): what AMT accepts as HostName. */
export function isHostLabel(name: string): boolean {
  return LABEL.test(name);
}

export function isDomainName(name: string): boolean {
  return name.length <= 255 && name.split('.').every((l) => LABEL.test(l));
}

/**
 * The host name for a device from the profile pattern. `{hostname}` is the name the device
 * already has, or `amt-{uuid8}` when it has none. SCS_PROFILE_INVALID when the result is not
 * a DNS label.
 */
export function renderHostName(pattern: string, device: { readonly uuid: string; readonly hostName?: string }): string {
  const uuid = device.uuid.toLowerCase();
  const own =
    device.hostName !== undefined && isHostLabel(device.hostName) ? device.hostName : `amt-${uuid.slice(0, 8)}`;
  const name = pattern.replace(PLACEHOLDER, (whole, key: string) => {
    if (key === 'uuid') return uuid;
    if (key === 'uuid8') return uuid.slice(0, 8);
    if (key === 'hostname') return own;
    return whole;
  });
  if (!isHostLabel(name)) {
    throw invalid('hostNamePattern', `"${pattern}" gives "${name}" for device ${uuid}, which is not a DNS label`);
  }
  return name;
}

function checkPattern(pattern: string): void {
  for (const m of pattern.matchAll(PLACEHOLDER)) {
    if (!PLACEHOLDERS.has(m[1] ?? '')) {
      throw invalid('hostNamePattern', `unknown placeholder {${m[1] ?? ''}}; known: {uuid}, {uuid8}, {hostname}`);
    }
  }
  const literal = pattern.replace(PLACEHOLDER, '');
  if (/[{}]/.test(literal)) throw invalid('hostNamePattern', 'an unmatched { or }');
  if (!/^[A-Za-z0-9-]*$/.test(literal)) {
    throw invalid('hostNamePattern', 'literal text may hold only letters, digits and hyphens (a DNS label)');
  }
  renderHostName(pattern, { uuid: SAMPLE_UUID, hostName: 'a'.repeat(63) });
  renderHostName(pattern, { uuid: SAMPLE_UUID });
}

type Check = (value: unknown) => unknown;

function oneOf<T extends string>(field: string, values: readonly T[]): Check {
  return (v) => {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      throw invalid(field, `expected one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
}

function bool(field: string): Check {
  return (v) => {
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === 'on' || v === 'yes') return true;
    if (v === 'false' || v === 'off' || v === 'no') return false;
    throw invalid(field, `expected true/false (or on/off), got ${JSON.stringify(v)}`);
  };
}

const CHECKS: Readonly<Record<keyof ProfileSettings, Check>> = {
  adminUser: (v) => {
    if (typeof v !== 'string' || !/^[\x21-\x7e]{1,16}$/.test(v)) {
      throw invalid('adminUser', '1-16 printable 7-bit ASCII characters without spaces (AMT limit)');
    }
    return v;
  },
  adminPassword: oneOf('adminPassword', ['random', 'fixed']),
  mebxPassword: oneOf('mebxPassword', ['keep', 'random', 'fixed']),
  hostNamePattern: (v) => {
    if (typeof v !== 'string' || v === '') throw invalid('hostNamePattern', 'expected a non-empty pattern');
    checkPattern(v);
    return v;
  },
  domainName: (v) => {
    if (typeof v !== 'string' || (v !== '' && !isDomainName(v))) {
      throw invalid('domainName', `"${String(v)}" is not a DNS domain name (labels of letters, digits, inner hyphens)`);
    }
    return v.toLowerCase();
  },
  timeSync: bool('timeSync'),
  tls: bool('tls'),
  certificateValidityDays: (v) => {
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 3650) {
      throw invalid('certificateValidityDays', `expected a whole number 1..3650, got ${JSON.stringify(v)}`);
    }
    return n;
  },
  renewPsk: bool('renewPsk'),
  onNoRenewalPsk: oneOf('onNoRenewalPsk', ['fail', 'skip']),
};

export const PROFILE_FIELDS = Object.keys(CHECKS) as (keyof ProfileSettings)[];

/**
 * Validates `changes` on top of `base` (defaults for a new profile): unknown fields, wrong
 * types and values out of range are SCS_PROFILE_INVALID naming the field.
 */
export function mergeSettings(base: ProfileSettings, changes: Readonly<Record<string, unknown>> = {}): ProfileSettings {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(changes)) {
    const check = (CHECKS as Readonly<Record<string, Check>>)[key];
    if (check === undefined) {
      throw invalid(key, `unknown field; known fields: ${PROFILE_FIELDS.join(', ')}`);
    }
    out[key] = check(value);
  }
  return out as unknown as ProfileSettings;
}

/** Reads stored JSON back; fields a newer server added are dropped, missing ones take defaults. */
export function parseStoredSettings(json: string): ProfileSettings {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (cause) {
    throw new ScsError('SCS_STORE_FAILED', 'a stored profile is not valid JSON', { cause });
  }
  if (typeof raw !== 'object' || raw === null)
    throw new ScsError('SCS_STORE_FAILED', 'a stored profile is not an object');
  const known = Object.fromEntries(Object.entries(raw).filter(([k]) => (PROFILE_FIELDS as string[]).includes(k)));
  return mergeSettings(DEFAULT_PROFILE_SETTINGS, known);
}

/**
 * The AMT strong-password rule (§6 step 3): 8-32 printable ASCII characters with an uppercase
 * letter, a lowercase letter, a digit and a special character; `:`, `,` and `"` are refused by
 * MEBx, `_` and space do not count as special.
 */
export function isStrongPassword(password: string): boolean {
  return (
    password.length >= 8 &&
    password.length <= 32 &&
    /^[\x20-\x7e]+$/.test(password) &&
    !/[:,"]/.test(password) &&
    /[A-Z]/.test(password) &&
    /[a-z]/.test(password) &&
    /[0-9]/.test(password) &&
    /[^A-Za-z0-9_ ]/.test(password)
  );
}

/** Checks a secret a profile is given; the message never contains the value. */
export function checkProfileSecret(name: ProfileSecretName, value: Secret<string>): void {
  const v = value.reveal();
  if (name === 'currentMebxPassword') {
    // Whatever the technician typed; only shape is checked (Digest carries any printable ASCII).
    if (v.length < 1 || v.length > 32 || !/^[\x20-\x7e]+$/.test(v)) {
      throw invalid(name, 'expected 1-32 printable ASCII characters');
    }
    return;
  }
  if (!isStrongPassword(v)) {
    throw invalid(
      name,
      'not a strong AMT password: 8-32 printable ASCII with an uppercase letter, a lowercase letter, a digit and a special character (not : , ")',
    );
  }
}

/** Cross-field rules: a `fixed` mode needs its secret. */
export function checkProfileComplete(
  settings: ProfileSettings,
  secretsSet: Readonly<Record<ProfileSecretName, boolean>>,
): void {
  if (settings.adminPassword === 'fixed' && !secretsSet.adminPassword) {
    throw invalid('adminPassword', 'is "fixed" but no admin password is set (give one with the admin password option)');
  }
  if (settings.mebxPassword === 'fixed' && !secretsSet.newMebxPassword) {
    throw invalid('mebxPassword', 'is "fixed" but no new MEBx password is set');
  }
}
