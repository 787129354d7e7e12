import type { Command } from 'commander';
import type { Config } from '../config.ts';
import { readKeyIfPresent } from '../crypto/key-rotation.ts';
import { ScsError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { openStore } from '../store/open.ts';
import { rotateMasterKey } from '../store/sql/rewrap-data-keys.ts';
import { rotateDataKey } from '../store/sql/rotate-data-key.ts';
import { SqlStore } from '../store/sql/sql-store.ts';
import { rotateSqliteMasterKey } from '../store/sqlite/rotate-master-key.ts';
import { configFrom } from './context.ts';
import type { Io } from './io.ts';
import { cliActor, parseCount } from './psk-db.ts';

/** The SQLite file of `config.db`, or a clear refusal for another engine (`what`: the command). */
export function sqliteFileOf(config: Pick<Config, 'db'>, what: string, otherwise: string): string {
  if (!config.db.startsWith('sqlite:')) {
    throw new ScsError('SCS_STORE_UNSUPPORTED', `${what} works on SQLite databases; ${otherwise}`, {
      details: { scheme: config.db.split(':')[0] ?? '' },
    });
  }
  return config.db.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
}

interface RotateFlags {
  dataKey?: boolean;
  batchSize?: string;
}

/**
 * `key rotate`: a new master key wrapping the same data keys; `key rotate --data-key`: a new data
 * key, every secret re-sealed under it, the old one deleted (docs/security.md, "Keys and backups").
 */
export function registerKeyCommands(program: Command, io: Io): void {
  const key = program.command('key').description('the master key and the data keys that seal secrets');
  key
    .command('rotate')
    .description(
      'create a new master key and re-wrap every data key under it (one transaction; safe while servers run); ' +
        'with --data-key: a new data key, every secret re-sealed under it in batches (resumable), the old key deleted',
    )
    .option('--data-key', 'rotate the data key instead of the master key')
    .option('--batch-size <n>', 'with --data-key: secrets re-sealed per transaction (default 1000, at most 10000)')
    .action(async (flags: RotateFlags, command: Command) => {
      const config = configFrom(command);
      const log = createLogger(config.logLevel);
      if (flags.dataKey === true) {
        await rotateDataKeyCommand(config, flags, io);
        return;
      }
      const result = config.db.startsWith('sqlite:')
        ? await rotateSqliteMasterKey({
            file: sqliteFileOf(config, 'key rotate', ''),
            masterKeyFile: config.masterKeyFile,
            actor: cliActor(),
            log,
          })
        : await rotateMasterKey({
            open: () => openStore(config, log),
            masterKeyFile: config.masterKeyFile,
            actor: cliActor(),
            log,
          });
      io.out(
        `master key rotated: ${result.dataKeys} data key(s) re-wrapped; the new key (fingerprint ${result.newKey}) ` +
          `is in ${result.keyFile}`,
      );
      io.err('  back up the new key file now; backups of the database made before now open only with the old key');
      if (!config.db.startsWith('sqlite:')) {
        io.err(
          `  copy it to every other node now: a node started with the old key (fingerprint ${result.oldKey}) ` +
            'refuses to start (SCS_MASTER_KEY_ROTATED); running nodes keep working',
        );
      }
    });
}

async function rotateDataKeyCommand(config: Config, flags: RotateFlags, io: Io): Promise<void> {
  const log = createLogger(config.logLevel);
  const batchSize = flags.batchSize === undefined ? 1000 : parseCount(flags.batchSize, '--batch-size', 10_000);
  const { store } = await openStore(config, log);
  try {
    const raw = SqlStore.rawOf(store);
    if (raw === undefined) throw new ScsError('SCS_STORE_UNSUPPORTED', 'key rotate --data-key needs an SQL store');
    // openStore checked this file's key opens every data key (and finished an interrupted rotation).
    const masterKey = await readKeyIfPresent(config.masterKeyFile);
    if (masterKey === undefined) {
      throw new ScsError('SCS_MASTER_KEY_INVALID', `master key file ${config.masterKeyFile} is gone`);
    }
    let lastLine = 0;
    try {
      const result = await rotateDataKey(raw.db, raw.engine, masterKey, {
        actor: cliActor(),
        batchSize,
        log,
        onProgress: (p) => {
          // One line per table at most every 2 s, and its last batch.
          if (p.done < p.total && performance.now() - lastLine < 2000) return;
          lastLine = performance.now();
          io.err(`  ${p.table}: ${p.done}/${p.total} re-sealed`);
        },
      });
      const counts = Object.entries(result.resealed)
        .filter(([, n]) => n > 0)
        .map(([t, n]) => `${t} ${n}`)
        .join(', ');
      io.out(
        `data key ${result.keyId} is now the data key${result.resumed ? ' (an interrupted rotation was resumed)' : ''}; ` +
          `re-sealed: ${counts === '' ? 'nothing' : counts}; deleted data key(s): ${result.deleted.join(', ') || 'none'}`,
      );
    } finally {
      masterKey.fill(0);
    }
  } finally {
    await store.close();
  }
}
