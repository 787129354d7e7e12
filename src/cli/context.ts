import type { Command } from 'commander';
import { loadConfig, SETTINGS, type Config } from '../config.ts';

/**
 * Global options: every setting of src/config.ts is a flag on the root command, so any
 * command can be pointed at another data directory or database.
 */
export function addConfigOptions(program: Command): void {
  program.option('--config <file>', 'JSON file with settings (env SCS_CONFIG)');
  for (const s of SETTINGS) {
    program.option(`${s.flag} <value>`, `${s.help} (env ${s.env})`);
  }
}

/** Builds the Config once from the root command's flags and the environment. */
export function configFrom(command: Command): Config {
  const opts = command.optsWithGlobals<Record<string, string | undefined>>();
  const flags: Partial<Record<keyof Config, string>> = {};
  for (const s of SETTINGS) {
    const v = opts[s.key];
    if (v !== undefined) flags[s.key] = v;
  }
  return loadConfig({ flags, file: opts.config });
}
