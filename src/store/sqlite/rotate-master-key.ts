import { existsSync, statSync } from 'node:fs';
import { ScsError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { rotateMasterKey, type RotateResult, type RotationStep } from '../sql/rewrap-data-keys.ts';
import { openSqliteStore } from './open-sqlite.ts';

export type { RotateResult, RotationStep };

export interface RotateOptions {
  readonly file: string;
  readonly masterKeyFile: string;
  readonly actor: string;
  readonly log?: Logger;
  /** Tests: called after each step, a throw there plays a crash at that point. */
  readonly afterStep?: (step: RotationStep) => void | Promise<void>;
}

/**
 * `amt-scs key rotate` on SQLite (src/store/sql/rewrap-data-keys.ts, rotateMasterKey, does the
 * work for both engines): refuses a database file that does not exist rather than creating one.
 */
export async function rotateSqliteMasterKey(options: RotateOptions): Promise<RotateResult> {
  const { file, masterKeyFile, log } = options;
  if (!existsSync(file) || statSync(file).size === 0) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `there is no database at ${file}: nothing to rotate`);
  }
  return rotateMasterKey({
    open: () => openSqliteStore({ file, masterKeyFile, ...(log === undefined ? {} : { log }) }),
    masterKeyFile,
    actor: options.actor,
    ...(log === undefined ? {} : { log }),
    ...(options.afterStep === undefined ? {} : { afterStep: options.afterStep }),
  });
}
