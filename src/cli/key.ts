import type { Command } from 'commander';
import type { Config } from '../config.ts';
import { ScsError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { rotateSqliteMasterKey } from '../store/sqlite/rotate-master-key.ts';
import { configFrom } from './context.ts';
import type { Io } from './io.ts';
import { cliActor } from './psk-db.ts';

/** The SQLite file of `config.db`, or a clear refusal for another engine (`what`: the command). */
export function sqliteFileOf(config: Pick<Config, 'db'>, what: string, otherwise: string): string {
  if (!config.db.startsWith('sqlite:')) {
    throw new ScsError('SCS_STORE_UNSUPPORTED', `${what} works on SQLite databases; ${otherwise}`, {
      details: { scheme: config.db.split(':')[0] ?? '' },
    });
  }
  return config.db.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
}

/** `key rotate`: a new master key wrapping the same data keys (docs/security.md, "Keys and backups"). */
export function registerKeyCommands(program: Command, io: Io): void {
  const key = program.command('key').description('the master key that wraps the database data keys');
  key
    .command('rotate')
    .description(
      'create a new master key and re-wrap every data key under it (one transaction; safe while the server runs)',
    )
    .action(async (_flags: unknown, command: Command) => {
      const config = configFrom(command);
      const file = sqliteFileOf(
        config,
        'key rotate',
        'rotation of a PostgreSQL installation is not implemented yet (docs/security.md, "Keys and backups")',
      );
      const log = createLogger(config.logLevel);
      const result = await rotateSqliteMasterKey({ file, masterKeyFile: config.masterKeyFile, actor: cliActor(), log });
      io.out(`master key rotated: ${result.dataKeys} data key(s) re-wrapped; the new key is in ${result.keyFile}`);
      io.err('  back up the new key file now; backups of the database made before now open only with the old key');
    });
}
