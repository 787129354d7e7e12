import { createHmac, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { ScsError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { errnoOf, MASTER_KEY_BYTES, parseMasterKey, syncDir } from './masterKey.ts';

/**
 * The key files of a master key rotation (docs/security.md, "Keys and backups"). The database
 * and the key file cannot change in one atomic step, so the new key is written first, next to
 * the current one, and named so that a start after a crash at any point finds a key that opens
 * the database:
 *
 *     <key>.old   hard link to the key being replaced (a backup until the rotation is done)
 *     <key>.next  the new key, 0600, fsynced before the database changes
 *
 * 1. link <key> -> <key>.old; write <key>.next             (database untouched: <key> opens it)
 * 2. one transaction re-wraps every data key under the new key   (<key>.next opens it)
 * 3. rename <key>.next -> <key>; unlink <key>.old           (<key> opens it again)
 *
 * A crash between 2 and 3 leaves a database that <key> no longer opens but <key>.next does:
 * `finishInterruptedRotation` (called by the store on a key mismatch) completes step 3.
 */

export function pendingKeyFile(keyFile: string): string {
  return `${keyFile}.next`;
}

export function retiredKeyFile(keyFile: string): string {
  return `${keyFile}.old`;
}

/**
 * A master key's public name: the first 16 hex digits of HMAC-SHA256(key, a fixed label). One-way
 * (the key is 256 random bits), so it can be written to the audit log: a rotation records the
 * old and the new key's fingerprint, and a node started with a replaced key is told so
 * (SCS_MASTER_KEY_ROTATED) instead of "wrong key".
 */
export function masterKeyFingerprint(key: Buffer): string {
  return createHmac('sha256', key).update('amt-scs/master-key-fingerprint/1').digest('hex').slice(0, 16);
}

export function newMasterKey(): Buffer {
  return randomBytes(MASTER_KEY_BYTES);
}

/** The key in `file`, or undefined when there is no such file. Errors name the file, never its content. */
export async function readKeyIfPresent(file: string): Promise<Buffer | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    if (errnoOf(cause) === 'ENOENT') return undefined;
    throw new ScsError('SCS_FILE_IO', `cannot read key file ${file}`, { cause, details: { file } });
  }
  return parseMasterKey(text, file);
}

/** Writes `key` as 64 hex digits to a new file (O_EXCL, 0600), fsyncs it and its directory. */
export async function writeKeyFile(file: string, key: Buffer): Promise<void> {
  try {
    const handle = await open(file, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
    try {
      await handle.writeFile(`${key.toString('hex')}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (cause) {
    throw new ScsError('SCS_FILE_IO', `cannot write key file ${file}`, { cause, details: { file } });
  }
  await syncDir(path.dirname(file));
}

/** Hard-links the current key to `<key>.old` (replacing a stale one). */
export async function keepRetiredKey(keyFile: string): Promise<void> {
  const old = retiredKeyFile(keyFile);
  await removeIfPresent(old);
  try {
    await link(keyFile, old);
  } catch (cause) {
    throw new ScsError('SCS_FILE_IO', `cannot keep a copy of ${keyFile} as ${old}`, { cause, details: { file: old } });
  }
  await syncDir(path.dirname(keyFile));
}

/** Step 3: the new key takes the key file's name (atomic rename), then the old copy goes. */
export async function installPendingKey(keyFile: string): Promise<void> {
  try {
    await rename(pendingKeyFile(keyFile), keyFile);
  } catch (cause) {
    throw new ScsError('SCS_FILE_IO', `cannot install the new master key as ${keyFile}`, {
      cause,
      details: { file: keyFile },
    });
  }
  await syncDir(path.dirname(keyFile));
  await removeIfPresent(retiredKeyFile(keyFile));
  await syncDir(path.dirname(keyFile));
}

export async function removeIfPresent(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (cause) {
    if (errnoOf(cause) === 'ENOENT') return;
    throw new ScsError('SCS_FILE_IO', `cannot remove ${file}`, { cause, details: { file } });
  }
}

/**
 * Called when the key file does not open the database. If a rotation committed its new
 * wrapping but died before renaming `<key>.next` (step 3), `opens(next)` is true: the rename is
 * completed and the new key returned. Otherwise nothing is touched and undefined is returned
 * (the caller reports the mismatch).
 */
export async function finishInterruptedRotation(
  keyFile: string,
  opens: (key: Buffer) => Promise<boolean>,
  log?: Logger,
): Promise<Buffer | undefined> {
  let next: Buffer | undefined;
  try {
    next = await readKeyIfPresent(pendingKeyFile(keyFile));
  } catch {
    return undefined;
  }
  if (next === undefined || !(await opens(next))) {
    next?.fill(0);
    return undefined;
  }
  await installPendingKey(keyFile);
  log?.warn({ file: keyFile }, 'completed an interrupted master key rotation: the new key is now in the key file');
  return next;
}
