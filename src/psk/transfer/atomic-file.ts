import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ScsError } from '../../errors.ts';

/** Every exported file holds PPS values (or a bundle of them): owner read/write only. */
export const EXPORT_FILE_MODE = 0o600;

function ioError(what: string, file: string, cause: unknown): ScsError {
  const code = (cause as { code?: unknown } | undefined)?.code;
  const why = typeof code === 'string' ? ` (${code})` : '';
  return new ScsError('SCS_FILE_IO', `cannot ${what} ${file}${why}`, { cause, details: { file } });
}

/**
 * **(choice)** Every 8 MiB written, an fdatasync starts in the background (at most one at a
 * time), so the disk writes the file while the export computes the rest and the fsync before
 * the commit has little left to flush (a 54 MB bundle would otherwise be written out all at once
 * there, with the transaction waiting).
 */
const FLUSH_EVERY = 8 * 1024 * 1024;

/**
 * A file that appears at its final name complete or not at all: bytes go to a temp file in the
 * same directory (so the rename cannot cross file systems), created with mode 0600 and O_EXCL,
 * then `sync()` flushes and closes it, and `publish()` renames it into place and syncs the
 * directory so the new name survives a power cut.
 */
export class AtomicFile {
  readonly file: string;
  readonly tempFile: string;
  #fd: FileHandle | undefined;
  #state: 'open' | 'synced' | 'published' | 'discarded' = 'open';
  /** Bytes written since the last background flush started. */
  #unflushed = 0;
  /** A background fdatasync in flight (its failure is reported by `sync`). */
  #flushing: Promise<Error | undefined> | undefined;

  private constructor(file: string, tempFile: string, fd: FileHandle) {
    this.file = file;
    this.tempFile = tempFile;
    this.#fd = fd;
  }

  /** Refuses an existing `file` unless `overwrite`; the temp name is `.<name>.<random>.partial`. */
  static async create(file: string, options: { readonly overwrite?: boolean } = {}): Promise<AtomicFile> {
    const final = path.resolve(file);
    if (options.overwrite !== true) {
      const exists = await stat(final).then(
        () => true,
        (e: unknown) => {
          if ((e as { code?: unknown }).code === 'ENOENT') return false;
          throw ioError('inspect', final, e);
        },
      );
      if (exists) {
        throw new ScsError('SCS_FILE_IO', `${final} exists already: choose another name or allow overwriting it`, {
          details: { file: final },
        });
      }
    }
    const temp = path.join(path.dirname(final), `.${path.basename(final)}.${randomBytes(6).toString('hex')}.partial`);
    let fd: FileHandle;
    try {
      fd = await open(
        temp,
        fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
        EXPORT_FILE_MODE,
      );
      // The umask can only remove bits; chmod makes 0600 exact whatever the umask.
      await fd.chmod(EXPORT_FILE_MODE);
    } catch (e) {
      throw ioError('create', temp, e);
    }
    return new AtomicFile(final, temp, fd);
  }

  async write(chunk: Uint8Array): Promise<void> {
    const fd = this.#fd;
    if (fd === undefined || this.#state !== 'open') throw new Error('AtomicFile.write after sync or discard');
    try {
      let at = 0;
      while (at < chunk.length) {
        const { bytesWritten } = await fd.write(chunk, at, chunk.length - at);
        at += bytesWritten;
      }
    } catch (e) {
      throw ioError('write', this.tempFile, e);
    }
    this.#unflushed += chunk.length;
    if (this.#unflushed >= FLUSH_EVERY && this.#flushing === undefined) {
      this.#unflushed = 0;
      const flushing: Promise<Error | undefined> = fd.datasync().then(
        () => {
          if (this.#flushing === flushing) this.#flushing = undefined;
          return undefined;
        },
        (e: unknown) => (e instanceof Error ? e : new Error(String(e))), // kept: sync() reports it
      );
      this.#flushing = flushing;
    }
  }

  /** fsync + close: after this the temp file's content is durable. */
  async sync(): Promise<void> {
    const fd = this.#fd;
    if (fd === undefined || this.#state !== 'open') throw new Error('AtomicFile.sync twice or after discard');
    try {
      const failed = await this.#flushing;
      if (failed !== undefined) throw failed;
      await fd.sync();
      await fd.close();
    } catch (e) {
      throw ioError('sync', this.tempFile, e);
    }
    this.#fd = undefined;
    this.#state = 'synced';
  }

  /** Renames the synced temp file to the final name and syncs the directory entry. */
  async publish(): Promise<void> {
    if (this.#state !== 'synced') throw new Error('AtomicFile.publish before sync');
    await publishFile(this.tempFile, this.file);
    this.#state = 'published';
  }

  /** Closes and removes the temp file (best effort); a no-op once published. */
  async discard(): Promise<void> {
    if (this.#state === 'published' || this.#state === 'discarded') return;
    this.#state = 'discarded';
    const fd = this.#fd;
    this.#fd = undefined;
    await this.#flushing;
    await fd?.close().catch(() => undefined);
    await unlink(this.tempFile).catch(() => undefined);
  }
}

/** rename(temp, file) and fsync of the directory (POSIX: the rename is durable only then). */
export async function publishFile(tempFile: string, file: string): Promise<void> {
  try {
    await rename(tempFile, file);
  } catch (e) {
    throw ioError(`rename ${tempFile} to`, file, e);
  }
  try {
    const dir = await open(path.dirname(file), fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    // Some file systems refuse fsync on a directory; the rename itself has happened.
  }
}

export async function fileExists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
