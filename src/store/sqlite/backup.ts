import { randomBytes } from 'node:crypto';
import { constants as fsConstants, existsSync } from 'node:fs';
import { link, open, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { unwrapDataKey } from '../../crypto/envelope.ts';
import { ScsError } from '../../errors.ts';

export interface SqliteBackupOptions {
  /** The live database file. */
  readonly file: string;
  /** Where the snapshot goes; must not exist yet. */
  readonly target: string;
  /** When given, the snapshot's data keys are unwrapped with it (read only) to show it opens. */
  readonly masterKey?: Buffer;
}

export interface SqliteBackupResult {
  readonly target: string;
  readonly bytes: number;
  readonly psks: number;
  readonly auditHeadSeq: number;
  /** Whether masterKey (when given) opened every data key of the snapshot. */
  readonly keyOpens: boolean | undefined;
}

/**
 * A consistent copy of a live SQLite database (docs/security.md, "Keys and backups"):
 * `VACUUM INTO` runs inside one read transaction, so the copy is the database as of one commit
 * even while the server keeps writing (WAL readers do not block writers, nor writers them). The
 * copy goes to a temporary file in the target's directory, is fsynced and checked
 * (`PRAGMA integrity_check`), then hard-linked to the target name (which must not exist: a
 * backup never overwrites). The master key is not in the database, so it is not in the copy.
 */
export async function backupSqlite(options: SqliteBackupOptions): Promise<SqliteBackupResult> {
  const { file, target } = options;
  if (!existsSync(file)) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `there is no database at ${file}: nothing to back up`);
  }
  if (existsSync(target)) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `backup target ${target} exists already: choose a new name`, {
      details: { file: target },
    });
  }
  const dir = path.dirname(path.resolve(target));
  const tmp = path.join(dir, `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    let source: Database.Database;
    try {
      source = new Database(file, { fileMustExist: true, timeout: 30_000 });
    } catch (cause) {
      throw new ScsError('SCS_STORE_FAILED', `cannot open SQLite database ${file}`, { cause, details: { file } });
    }
    try {
      source.prepare('vacuum into ?').run(tmp);
    } catch (cause) {
      throw new ScsError('SCS_STORE_FAILED', `cannot copy ${file} to ${tmp}`, { cause, details: { file } });
    } finally {
      source.close();
    }
    await fsync(tmp);
    const checked = check(tmp, options.masterKey);
    try {
      await link(tmp, target);
    } catch (cause) {
      throw new ScsError('SCS_FILE_IO', `cannot write backup ${target}`, { cause, details: { file: target } });
    }
    await fsync(dir, true);
    return { target, bytes: (await stat(target)).size, ...checked };
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

function check(copy: string, masterKey: Buffer | undefined): Omit<SqliteBackupResult, 'target' | 'bytes'> {
  const db = new Database(copy, { readonly: true, fileMustExist: true });
  try {
    const integrity = db.pragma('integrity_check', { simple: true });
    if (integrity !== 'ok') {
      throw new ScsError('SCS_STORE_FAILED', `the backup copy fails PRAGMA integrity_check: ${String(integrity)}`);
    }
    const psks = db.prepare('select count(*) from psks').pluck().get() as number;
    const auditHeadSeq = db.prepare('select seq from audit_head where id = 1').pluck().get() as number;
    let keyOpens: boolean | undefined;
    if (masterKey !== undefined) {
      const rows = db.prepare('select key_id, wrapped from data_keys').all() as { key_id: number; wrapped: Buffer }[];
      keyOpens = rows.every((r) => {
        try {
          unwrapDataKey(masterKey, r.key_id, r.wrapped).fill(0);
          return true;
        } catch {
          return false;
        }
      });
    }
    return { psks, auditHeadSeq, keyOpens };
  } finally {
    db.close();
  }
}

async function fsync(file: string, directory = false): Promise<void> {
  try {
    const handle = await open(file, fsConstants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (cause) {
    if (directory) return; // best effort: not every platform opens a directory
    throw new ScsError('SCS_FILE_IO', `cannot sync ${file}`, { cause, details: { file } });
  }
}
