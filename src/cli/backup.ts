import { chmod, copyFile, constants as fsConstants } from 'node:fs/promises';
import type { Command } from 'commander';
import { readKeyIfPresent } from '../crypto/key-rotation.ts';
import { ScsError } from '../errors.ts';
import { backupSqlite } from '../store/sqlite/backup.ts';
import { configFrom } from './context.ts';
import type { Io } from './io.ts';
import { sqliteFileOf } from './key.ts';

interface BackupFlags {
  withMasterKey?: boolean;
}

/**
 * `backup <file>`: a consistent snapshot of the live SQLite database (docs/security.md, "Keys
 * and backups"). The master key stays out of it unless --with-master-key asks, with a warning:
 * a backup holding both is every PPS in clear for whoever gets the file.
 */
export function registerBackupCommands(program: Command, io: Io): void {
  program
    .command('backup')
    .description('write a consistent copy of the database to <file> (works while the server runs; no master key)')
    .argument('<file>', 'where the copy goes (must not exist)')
    .option('--with-master-key', 'also copy the master key to <file>.master.key (0600): keep the two apart!')
    .action(async (target: string, flags: BackupFlags, command: Command) => {
      const config = configFrom(command);
      const file = sqliteFileOf(
        config,
        'backup',
        'for PostgreSQL use pg_dump (e.g. pg_dump -Fc), which takes a consistent snapshot, and back up the master key file apart from it',
      );
      const masterKey = await readKeyIfPresent(config.masterKeyFile).catch(() => undefined);
      try {
        const r = await backupSqlite({ file, target, ...(masterKey === undefined ? {} : { masterKey }) });
        io.out(
          `backup written: ${r.target} (${r.bytes} bytes, ${r.psks} PSKs, audit head seq ${r.auditHeadSeq}, integrity ok)`,
        );
        if (r.keyOpens === false) {
          io.err(`warning: the master key file ${config.masterKeyFile} does not open this backup's data keys`);
        }
        if (flags.withMasterKey === true) {
          const keyCopy = `${target}.master.key`;
          try {
            await copyFile(config.masterKeyFile, keyCopy, fsConstants.COPYFILE_EXCL);
            await chmod(keyCopy, 0o600);
          } catch (cause) {
            throw new ScsError('SCS_FILE_IO', `cannot copy the master key to ${keyCopy}`, {
              cause,
              details: { file: keyCopy },
            });
          }
          io.err(`WARNING: the master key was copied to ${keyCopy}.`);
          io.err('  Whoever holds both files can read every PPS: store them in different places.');
        } else {
          io.err(`the master key is not in the backup: keep a copy of ${config.masterKeyFile} apart from it`);
        }
      } finally {
        masterKey?.fill(0);
      }
    });
}
