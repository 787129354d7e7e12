import { once } from 'node:events';
import type { Command } from 'commander';
import { ensureBootstrapToken } from '../api/tokens.ts';
import { consolePlugin, findConsoleBuild } from '../console/plugin.ts';
import { nativeAead, nativeAeadStatus } from '../crypto/native-aead.ts';
import { ScsError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { startServer } from '../main.ts';
import { configFrom } from './context.ts';
import type { Io } from './io.ts';
import { cliActor } from './psk-db.ts';

interface ServeFlags {
  graceMs: string;
}

/**
 * `amt-scs serve` (also `npm start`): the hello listener and the provisioning runner on the
 * configured store. Runs until SIGINT or SIGTERM, then stops gracefully and exits 0.
 */
export function registerServeCommands(program: Command, io: Io): void {
  program
    .command('serve')
    .description('listen for device hellos and provision devices (until SIGINT/SIGTERM)')
    .option(
      '--grace-ms <ms>',
      'on SIGINT/SIGTERM, how long running jobs may take to finish before they are left to resume',
      '5000',
    )
    .action(async (flags: ServeFlags, command: Command) => {
      const graceMs = Number(flags.graceMs);
      if (!Number.isInteger(graceMs) || graceMs < 0 || graceMs > 600_000) {
        throw new ScsError(
          'SCS_ARGUMENT_INVALID',
          `--grace-ms must be a whole number 0..600000, got "${flags.graceMs}"`,
        );
      }
      const config = configFrom(command);
      const log = createLogger(config.logLevel);
      const actor = cliActor().replace(/^cli:/, 'scs:');
      // Signals that arrive while starting still stop the server once it is up.
      const stopSignal = Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
      // The web console when it was built (npm install runs the build; docs/console.md): never a stand-in page.
      const consoleBuild = findConsoleBuild();
      const server = await startServer(config, {
        log,
        actor,
        api: true,
        ...(consoleBuild === undefined ? {} : { apiExtensions: [consolePlugin(consoleBuild)] }),
      });
      if (server.masterKey.created) {
        io.err(`created master key ${server.masterKey.file} (mode 0600)`);
        io.err('  back it up now, apart from the database: without it the PSK database cannot be read');
      }
      if (server.caCreated) io.err('created the SCS device CA (its key is stored sealed in the database)');
      const profile = await server.store.profiles.get(config.profile);
      if (profile === undefined) {
        io.err(
          `warning: profile "${config.profile}" (--profile) does not exist: jobs for PSKs without a profile will fail`,
        );
      } else if (!profile.secretsSet.currentMebxPassword) {
        io.err(
          `warning: profile "${config.profile}" has no current MEBx password: only devices whose hello says the ` +
            `password is still the factory one can be configured (amt-scs profile set ${config.profile} --current-mebx-password-env VAR)`,
        );
      }
      // First start: one admin API token, printed once and written to <dataDir>/admin.token (0600).
      await ensureBootstrapToken(server.store, config, io);
      if (server.api !== undefined) {
        io.err(
          `amt-scs: REST API on ${server.api.url}/api/v1 (OpenAPI ${server.api.url}/openapi.json, docs ${server.api.url}/docs)`,
        );
        io.err(
          consoleBuild === undefined
            ? 'amt-scs: web console not built (run `npm run build:console`, then restart); the REST API works without it'
            : `amt-scs: web console on ${server.api.url}/ (sign in with an API token)`,
        );
      }
      if (nativeAead === null) {
        io.err(
          `amt-scs: warning: native AES-GCM ${nativeAeadStatus}; bulk work (import, export, generate) seals through ` +
            'node:crypto, ~14x slower per secret (build it: node --import tsx scripts/build-native.ts)',
        );
      }
      const { address, port } = server.helloAddress;
      log.info({ host: address, port, resumed: server.resumed, maxJobs: config.maxJobs }, 'listening for hellos');
      io.err(
        `amt-scs: listening for hellos on ${address}:${port}; connecting back on port ${config.amtTlsPort}; ` +
          `${server.resumed} unfinished job(s) resumed; at most ${config.maxJobs} at once`,
      );
      const [signal] = (await stopSignal) as [NodeJS.Signals];
      io.err(`amt-scs: ${signal}: stopping (running jobs get ${graceMs} ms, then resume at the next start)`);
      await server.stop({ graceMs });
      const s = server.runner.stats();
      log.info({ ...s }, 'stopped');
      io.err(`amt-scs: stopped (${s.succeeded} provisioned, ${s.failed} failed in this run)`);
    });
}
