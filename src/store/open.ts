import type { Config } from '../config.ts';
import { ScsError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { openPostgresStore } from './postgres/open-postgres.ts';
import { openSqliteStore } from './sqlite/open-sqlite.ts';
import type { OpenedStore } from './store.ts';

/**
 * Opens the store `config.db` names, ready to use: master key loaded (or created on the first
 * start), schema migrated, data keys unwrapped. Adapters are imported statically and chosen by
 * the URL scheme: sqlite:<file> (one node) or postgres://... (one or several nodes).
 */
export async function openStore(config: Pick<Config, 'db' | 'masterKeyFile'>, log?: Logger): Promise<OpenedStore> {
  const url = config.db;
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (file === '') throw new ScsError('SCS_CONFIG_INVALID', `--db ${url}: no file after sqlite:`);
    return openSqliteStore(
      log === undefined
        ? { file, masterKeyFile: config.masterKeyFile }
        : { file, masterKeyFile: config.masterKeyFile, log },
    );
  }
  if (/^postgres(ql)?:\/\//i.test(url)) {
    return openPostgresStore(
      log === undefined
        ? { url, masterKeyFile: config.masterKeyFile }
        : { url, masterKeyFile: config.masterKeyFile, log },
    );
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1] ?? url;
  throw new ScsError(
    'SCS_STORE_UNSUPPORTED',
    `--db names an unsupported database "${scheme}": use sqlite:<file> or postgres://user@host/database`,
    { details: { scheme } },
  );
}
