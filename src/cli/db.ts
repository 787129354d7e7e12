import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { ScsError } from '../errors.ts';
import { openStore } from '../store/open.ts';
import { copyInstallation } from '../store/sql/copy-installation.ts';
import { configFrom } from './context.ts';
import type { Io } from './io.ts';

interface MigrateFlags {
  from: string;
  to: string;
  force?: boolean;
}

/**
 * `db migrate --from <sqlite file> --to postgres://...`: moves a whole installation to
 * PostgreSQL (docs/operations.md, "Moving from SQLite"). Both databases are opened with the
 * one master key (--master-key-file): the PSKs are copied sealed and stay readable with it.
 * Stop the server first; the copy holds the SQLite write lock while it reads.
 */
export function registerDbCommands(program: Command, io: Io): void {
  const db = program.command('db').description('database maintenance');
  db.command('migrate')
    .description('copy a whole SQLite installation into an empty PostgreSQL database, then verify it')
    .requiredOption('--from <file>', 'the SQLite database file (sqlite:<file> also accepted)')
    .requiredOption('--to <url>', 'postgres://user@host[:port]/database[?schema=name]')
    .option('--force', 'replace the contents of a target that already holds data')
    .action(async (flags: MigrateFlags, command: Command) => {
      const config = configFrom(command);
      if (!/^postgres(ql)?:\/\//.test(flags.to)) {
        throw new ScsError('SCS_ARGUMENT_INVALID', '--to must be a postgres:// URL');
      }
      const file = flags.from.replace(/^sqlite:/, '');
      if (!existsSync(file)) {
        throw new ScsError('SCS_FILE_IO', `--from ${file}: no such database file`, { details: { file } });
      }
      const source = await openStore({ db: `sqlite:${file}`, masterKeyFile: config.masterKeyFile });
      try {
        const target = await openStore({ db: flags.to, masterKeyFile: config.masterKeyFile });
        try {
          let last = '';
          const result = await copyInstallation(source.store, target.store, {
            force: flags.force === true,
            onProgress: ({ table, copied, total }) => {
              // One line per table, and one per 10% of a big one.
              const step = Math.max(1, Math.ceil(total / 10));
              const key = `${table}:${Math.floor(copied / step)}`;
              if (key === last && copied !== total) return;
              last = key;
              io.err(`  ${table}: ${copied}/${total}`);
            },
          });
          const verify = await target.store.audit.verify();
          if (!verify.ok) {
            throw new ScsError('SCS_STORE_FAILED', `the audit chain does not verify on the target: ${verify.reason}`);
          }
          const counts = await target.store.psks.countByState();
          const psks = Object.values(counts).reduce((a, n) => a + n, 0);
          io.out(
            `migrated ${Object.values(result.tables).reduce((a, n) => a + n, 0)} rows in ${Object.keys(result.tables).length} tables; ` +
              `counts verified; ${psks} PSKs (sealed, same master key, digest ${result.pskDigest.slice(0, 16)}); ` +
              `audit chain verified (${verify.entries} entries)`,
          );
        } finally {
          await target.store.close();
        }
      } finally {
        await source.store.close();
      }
    });
}
