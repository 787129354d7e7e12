import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { ScsError } from '../errors.ts';
import { Secret } from '../secret.ts';

/** AES-256: the master key wraps the database's data keys (src/crypto/envelope.ts). */
export const MASTER_KEY_BYTES = 32;

export interface MasterKey {
  readonly key: Secret<Buffer>;
  readonly file: string;
  /** True when this call created the file: the caller must tell the operator to back it up. */
  readonly created: boolean;
  /** Permission bits of the file; anything beyond 0600 deserves a warning. */
  readonly mode: number;
}

export interface LoadMasterKeyOptions {
  /**
   * Whether the database this key opens already exists. A missing key file is then an error:
   * a new key would silently orphan every secret in the database.
   */
  readonly databaseExists: boolean;
}

const HEX = /^[0-9a-fA-F]{64}$/;
const BASE64 = /^[A-Za-z0-9+/]{43}=?$|^[A-Za-z0-9_-]{43}$/;

/**
 * The key file holds the key as text: 64 hex digits (what we write) or base64 / base64url of
 * the 32 bytes, surrounding whitespace ignored. Errors name the file, never its content.
 */
export function parseMasterKey(text: string, file: string): Buffer {
  const t = text.trim();
  if (HEX.test(t)) return Buffer.from(t, 'hex');
  if (BASE64.test(t)) {
    const key = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (key.length === MASTER_KEY_BYTES) return key;
  }
  throw new ScsError(
    'SCS_MASTER_KEY_INVALID',
    `master key file ${file} does not hold a 32-byte key (expected 64 hex digits or 44 base64 characters)`,
    { details: { file } },
  );
}

/**
 * Loads the master key, or creates it on the very first start. Never creates a key when the
 * database already exists: that database's data key is wrapped by a key we do not have, and a
 * fresh key would make it look like a wrong key instead of a missing file.
 */
export async function loadMasterKey(file: string, options: LoadMasterKeyOptions): Promise<MasterKey> {
  const existing = await readKeyFile(file);
  if (existing !== undefined) return existing;
  if (options.databaseExists) {
    throw new ScsError(
      'SCS_MASTER_KEY_INVALID',
      `master key file ${file} does not exist but the database does: restore the key file from your backup ` +
        `(a new key cannot open the existing database)`,
      { details: { file } },
    );
  }
  return createKeyFile(file);
}

async function readKeyFile(file: string): Promise<MasterKey | undefined> {
  let text: string;
  let mode: number;
  try {
    text = await readFile(file, 'utf8');
    mode = (await stat(file)).mode & 0o777;
  } catch (cause) {
    if (errnoOf(cause) === 'ENOENT') return undefined;
    throw new ScsError('SCS_FILE_IO', `cannot read master key file ${file}`, { cause, details: { file } });
  }
  return { key: new Secret(parseMasterKey(text, file)), file, created: false, mode };
}

/**
 * Atomic creation: the key goes to a temporary file (0600, fsynced), which is then hard-linked
 * to the final name. link() fails if the name exists, so two processes starting at once end up
 * with one key: the loser reads the winner's file. The parent directory is created 0700.
 */
async function createKeyFile(file: string): Promise<MasterKey> {
  const dir = path.dirname(file);
  const key = randomBytes(MASTER_KEY_BYTES);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const handle = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
    try {
      await handle.writeFile(`${key.toString('hex')}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (cause) {
    await unlink(tmp).catch(() => undefined);
    throw new ScsError('SCS_FILE_IO', `cannot create master key file ${file}`, { cause, details: { file } });
  }
  try {
    await link(tmp, file);
  } catch (cause) {
    await unlink(tmp).catch(() => undefined);
    if (errnoOf(cause) === 'EEXIST') {
      const winner = await readKeyFile(file);
      if (winner !== undefined) return winner;
    }
    throw new ScsError('SCS_FILE_IO', `cannot create master key file ${file}`, { cause, details: { file } });
  }
  await unlink(tmp).catch(() => undefined);
  await syncDir(dir);
  return { key: new Secret(key), file, created: true, mode: 0o600 };
}

/** Makes a new directory entry durable; not every platform can open a directory. */
export async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, fsConstants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Best effort: the file itself is already synced.
  }
}

export function errnoOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}
