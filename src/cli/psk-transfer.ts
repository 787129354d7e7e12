import { createReadStream, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { ENV_SECRETS } from '../config.ts';
import { ScsError } from '../errors.ts';
import { DEFAULT_SETUPBIN_VERSION, type SetupBinVersion } from '../psk/formats/setupbin.ts';
import { formatPid } from '../psk/pid.ts';
import {
  exportPsksToFile,
  recoverPendingExports,
  type ExportFormat,
  type ExportSummary,
  type FileExportOptions,
  type SetupBinExportSettings,
} from '../psk/transfer/export.ts';
import { importPsks, type ImportOptions, type ImportSummary } from '../psk/transfer/import.ts';
import { MIN_PASSPHRASE_LENGTH } from '../psk/transfer/passphrase.ts';
import { Secret } from '../secret.ts';
import type { Io } from './io.ts';
import { parseCount, withStore } from './psk-db.ts';

const FORMATS: readonly ExportFormat[] = ['csv', 'setup-bin', 'bundle'];

interface ExportFlags {
  format: string;
  out: string;
  batch?: string;
  count?: string;
  state?: string;
  force?: boolean;
  setupbinVersion?: string;
  mebxPasswordFile?: string;
  newMebxPasswordFile?: string;
  hostnamePattern?: string;
  domain?: string;
  doNotConsume?: boolean;
  scramble: boolean;
  scsAddress?: string;
  scsPort?: string;
  enableAmt?: boolean;
  passphraseFile?: string;
  move?: boolean;
}

interface ImportFlags {
  batch?: string;
  state?: string;
  passphraseFile?: string;
  exportId?: string;
  json?: boolean;
}

function argument(message: string): ScsError {
  return new ScsError('SCS_ARGUMENT_INVALID', message);
}

/** First line of a file (a trailing newline is not part of a password). */
function readSecretFile(file: string, flag: string): Secret<string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new ScsError('SCS_FILE_IO', `${flag} ${file}: cannot read it`, { cause });
  }
  return new Secret(text.split(/\r?\n/)[0] ?? '');
}

/** Reads a line from the terminal without echoing it (raw mode); refuses when stdin is not a TTY. */
function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let text = '';
    const cleanup = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          cleanup();
          resolve(text);
          return;
        }
        if (ch === '\u0003') {
          cleanup();
          reject(argument('cancelled at the prompt'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') text = [...text].slice(0, -1).join('');
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}

interface SecretSource {
  /** The --…-file flag's value. */
  readonly file: string | undefined;
  readonly flag: string;
  readonly env: Secret<string> | undefined;
  readonly envName: string;
  /** Prompt text on a TTY; ask twice when `confirm`. */
  readonly prompt: string;
  readonly confirm?: boolean;
}

/** A secret from its file flag, else its env var, else a no-echo prompt on a terminal, else undefined. */
async function readSecret(source: SecretSource): Promise<Secret<string> | undefined> {
  if (source.file !== undefined) return readSecretFile(source.file, source.flag);
  if (source.env !== undefined) return source.env;
  if (process.stdin.isTTY !== true) return undefined;
  const first = await promptHidden(`${source.prompt}: `);
  if (source.confirm === true && first !== '') {
    const again = await promptHidden(`${source.prompt} (again): `);
    if (again !== first) throw argument('the two entries differ');
  }
  return new Secret(first);
}

/** A progress bar on stderr, only on a terminal and only once the work takes more than a moment. */
function progress(io: Io, label: string): { update(done: number, total: number | undefined): void; stop(): void } {
  const started = performance.now();
  let bar: cliProgress.SingleBar | undefined;
  return {
    update(done, total) {
      if (total === undefined || total === 0) return;
      if (bar === undefined && io.isTty && performance.now() - started > 500 && done < total) {
        bar = new cliProgress.SingleBar(
          { stream: process.stderr, format: `${label} [{bar}] {percentage}% | {value}/{total} | ETA {eta}s` },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, done);
      }
      bar?.update(done);
    },
    stop() {
      bar?.stop();
    },
  };
}

function parseFormat(text: string): ExportFormat {
  const f = text.trim().toLowerCase().replace('setupbin', 'setup-bin');
  if (!(FORMATS as readonly string[]).includes(f)) {
    throw argument(`--format must be one of ${FORMATS.join(', ')}, got "${text}"`);
  }
  return f as ExportFormat;
}

function parseExportState(text: string | undefined): 'available' | 'exported' | undefined {
  if (text === undefined) return undefined;
  const s = text.trim().toLowerCase();
  if (s !== 'available' && s !== 'exported') throw argument(`--state must be available or exported, got "${text}"`);
  return s;
}

/** Flags that only mean something for one format are refused with the others (no silent no-ops). */
function checkFlagsFit(format: ExportFormat, flags: ExportFlags): void {
  const setupOnly: [string, unknown][] = [
    ['--setupbin-version', flags.setupbinVersion],
    ['--mebx-password-file', flags.mebxPasswordFile],
    ['--new-mebx-password-file', flags.newMebxPasswordFile],
    ['--hostname-pattern', flags.hostnamePattern],
    ['--domain', flags.domain],
    ['--do-not-consume', flags.doNotConsume],
    ['--no-scramble', flags.scramble ? undefined : true],
    ['--scs-address', flags.scsAddress],
    ['--scs-port', flags.scsPort],
    ['--enable-amt', flags.enableAmt],
  ];
  const bundleOnly: [string, unknown][] = [
    ['--passphrase-file', flags.passphraseFile],
    ['--move', flags.move],
  ];
  for (const [name, value] of [
    ...(format === 'setup-bin' ? [] : setupOnly),
    ...(format === 'bundle' ? [] : bundleOnly),
  ]) {
    if (value !== undefined) throw argument(`${name} does not apply to --format ${format}`);
  }
}

async function setupBinSettings(
  flags: ExportFlags,
  io: Io,
  env: {
    mebxPassword?: Secret<string>;
    newMebxPassword?: Secret<string>;
  },
): Promise<SetupBinExportSettings> {
  let version: SetupBinVersion | undefined;
  if (flags.setupbinVersion !== undefined) {
    const v = Number(flags.setupbinVersion);
    if (v !== 1 && v !== 2 && v !== 3 && v !== 4) {
      throw argument(`--setupbin-version must be 1, 2, 3 or 4, got "${flags.setupbinVersion}"`);
    }
    version = v;
  }
  const current = await readSecret({
    file: flags.mebxPasswordFile,
    flag: '--mebx-password-file',
    env: env.mebxPassword,
    envName: ENV_SECRETS.mebxPassword,
    prompt: 'current MEBx password (factory default: admin)',
  });
  if (current === undefined || current.reveal() === '') {
    throw argument(
      `a setup.bin needs the current MEBx password: --mebx-password-file FILE, env ${ENV_SECRETS.mebxPassword}, or run on a terminal to be asked`,
    );
  }
  const next = await readSecret({
    file: flags.newMebxPasswordFile,
    flag: '--new-mebx-password-file',
    env: env.newMebxPassword,
    envName: ENV_SECRETS.newMebxPassword,
    prompt: 'new MEBx password (empty: keep the current one)',
    confirm: true,
  });
  if (flags.doNotConsume)
    io.err('warning: "do not consume": every machine reads the same record, so one PID on several machines');
  return {
    currentMebxPassword: current,
    ...(next === undefined || next.reveal() === '' ? {} : { newMebxPassword: next }),
    ...(version === undefined ? {} : { version }),
    ...(flags.hostnamePattern === undefined ? {} : { hostNamePattern: flags.hostnamePattern }),
    ...(flags.domain === undefined ? {} : { domainName: flags.domain }),
    ...(flags.scsAddress === undefined ? {} : { provisioningServerAddress: flags.scsAddress }),
    ...(flags.scsPort === undefined ? {} : { provisioningServerPort: parseCount(flags.scsPort, '--scs-port', 65535) }),
    doNotConsume: flags.doNotConsume === true,
    scramble: flags.scramble,
    ...(flags.enableAmt === true ? { enableAmt: true } : {}),
  };
}

function describeExport(s: ExportSummary): string[] {
  const lines: string[] = [];
  if (s.mode === 'exported' && s.stateChanged > 0) lines.push(`${s.stateChanged} PSKs marked exported`);
  if (s.mode === 'move') lines.push(`${s.stateChanged} PSKs marked transferred here`);
  if (s.bundleId !== undefined) lines.push(`bundle id ${s.bundleId}`);
  if (s.setupBinVersion !== undefined) lines.push(`setup.bin format ${s.setupBinVersion}, export id ${s.exportId}`);
  return lines;
}

function describeImport(s: ImportSummary): string {
  switch (s.format) {
    case 'bundle':
      if (s.outcome === 'already-imported') {
        return `bundle ${s.bundleId} was imported before (${s.previous?.importedAt.toISOString() ?? 'earlier'}, ${s.previous?.inserted ?? 0} PSKs): nothing changed`;
      }
      if (s.outcome === 'nothing-new') {
        return `bundle ${s.bundleId} from "${s.sourceName}": nothing new, all ${s.records} PSKs are here already with the same PPS`;
      }
      return `imported ${s.inserted} PSKs from bundle ${s.bundleId} ("${s.sourceName}", ${s.records} records, ${s.duplicates} already here)`;
    case 'csv':
      if (s.outcome === 'nothing-new') {
        return `nothing new: all ${s.records} pairs in ${s.file} are here already with the same PPS`;
      }
      return `imported ${s.inserted} PSKs from ${s.file} (${s.records} lines, ${s.duplicates} already here)`;
    case 'setup-bin': {
      const head =
        s.exportId === null
          ? `setup.bin not written by this server: imported ${s.inserted} of its ${s.unconsumed} unconsumed pairs (${s.duplicates} already here)`
          : `setup.bin of export ${s.exportId}: ${s.consumed.length} of ${s.records} records consumed, ${s.unconsumed} still on the key (states unchanged)`;
      return head;
    }
  }
}

export function registerPskTransferCommands(psk: Command, io: Io): void {
  psk
    .command('export')
    .description('hand PSKs out: a CSV for technicians, a setup.bin USB key, or an encrypted bundle for another SCS')
    .requiredOption('--format <format>', 'csv | setup-bin | bundle')
    .requiredOption('--out <file>', 'file to write (atomically, mode 0600)')
    .option('--batch <name>', 'only this batch')
    .option('--count <n>', 'at most this many (oldest first)')
    .option('--state <state>', 'available (default) or exported; a bundle takes both by default')
    .option('--force', 'replace an existing --out file')
    .option(
      '--setupbin-version <n>',
      `setup.bin format 1-4 (default ${DEFAULT_SETUPBIN_VERSION}, written as 2.1: AMT 4.0 and later)`,
    )
    .option('--mebx-password-file <file>', `current MEBx password (else env ${ENV_SECRETS.mebxPassword}, else asked)`)
    .option(
      '--new-mebx-password-file <file>',
      `new MEBx password (else env ${ENV_SECRETS.newMebxPassword}, else asked)`,
    )
    .option('--hostname-pattern <pattern>', 'host name per record: {n}, {n:4} (zero-padded), {pid}')
    .option('--domain <name>', 'domain name record')
    .option('--do-not-consume', 'setup.bin flag: the BIOS never consumes the record (one record only)')
    .option('--no-scramble', 'write setup.bin records unscrambled')
    .option('--scs-address <ipv4>', 'provisioning server address record')
    .option('--scs-port <port>', 'provisioning server port record')
    .option('--enable-amt', 'setup.bin: switch Intel AMT on (manageability feature selection)')
    .option(
      '--passphrase-file <file>',
      `bundle passphrase, ${MIN_PASSPHRASE_LENGTH}+ characters (else env ${ENV_SECRETS.bundlePassphrase}, else asked)`,
    )
    .option('--move', 'bundle: mark the exported PSKs transferred here (default: a copy)')
    .action(async (flags: ExportFlags, command: Command) => {
      const format = parseFormat(flags.format);
      checkFlagsFit(format, flags);
      const state = parseExportState(flags.state);
      const count = flags.count === undefined ? undefined : parseCount(flags.count, '--count', Number.MAX_SAFE_INTEGER);
      await withStore(command, io, async (store, { config, actor }) => {
        for (const r of await recoverPendingExports(store)) {
          if (r.outcome === 'renamed') io.err(`finished an earlier export cut short: ${r.file} is now in place`);
          if (r.outcome === 'lost')
            io.err(`warning: earlier export ${r.exportId} committed, but neither ${r.file} nor its temp file exists`);
        }
        const options: { -readonly [K in keyof FileExportOptions]: FileExportOptions[K] } = {
          format,
          actor,
          ...(flags.batch === undefined ? {} : { batch: flags.batch }),
          ...(count === undefined ? {} : { count }),
          ...(state === undefined ? {} : { state }),
          ...(flags.force === true ? { overwrite: true } : {}),
        };
        if (format === 'setup-bin') options.setupBin = await setupBinSettings(flags, io, config.secrets);
        if (format === 'bundle') {
          const passphrase = await readSecret({
            file: flags.passphraseFile,
            flag: '--passphrase-file',
            env: config.secrets.bundlePassphrase,
            envName: ENV_SECRETS.bundlePassphrase,
            prompt: `bundle passphrase (at least ${MIN_PASSPHRASE_LENGTH} characters)`,
            confirm: true,
          });
          if (passphrase === undefined) {
            throw new ScsError(
              'SCS_PASSPHRASE_MISSING',
              `a bundle needs a passphrase: --passphrase-file FILE, env ${ENV_SECRETS.bundlePassphrase}, or run on a terminal to be asked`,
            );
          }
          options.bundle = { passphrase, move: flags.move === true };
        }
        const bar = progress(io, 'export');
        options.onProgress = (done, total) => bar.update(done, total);
        const summary = await exportPsksToFile(store, options, flags.out).finally(() => bar.stop());
        if (summary.mode === 'copy') {
          io.err(
            'warning: this bundle is a copy: its PSKs stay usable here too, so two servers could hand out the same PSK; use --move to mark them transferred here',
          );
        }
        for (const line of describeExport(summary)) io.err(line);
        io.out(`exported ${summary.count} PSKs (${summary.format}) to ${summary.file}`);
      });
    });

  psk
    .command('import')
    .description('take PSKs in from a CSV, a setup.bin (reconciles consumed records) or a bundle; all or nothing')
    .argument('<file>', 'file to read; its format is detected')
    .option('--batch <name>', 'batch for pairs without one (a bundle: replaces the batches it carries)')
    .option('--state <state>', 'state of CSV / foreign setup.bin pairs: exported (default) or available')
    .option('--passphrase-file <file>', `bundle passphrase (else env ${ENV_SECRETS.bundlePassphrase}, else asked)`)
    .option('--export-id <id>', 'setup.bin: the export to reconcile against, when the file cannot tell')
    .option('--json', 'print the summary as JSON')
    .action(async (file: string, flags: ImportFlags, command: Command) => {
      const state = parseExportState(flags.state);
      const fileName = path.resolve(file);
      try {
        if (!(await stat(fileName)).isFile()) throw new Error('not a regular file');
      } catch (cause) {
        throw new ScsError('SCS_FILE_IO', `cannot read ${fileName}`, { cause, details: { file: fileName } });
      }
      await withStore(command, io, async (store, { config, actor }) => {
        const bar = progress(io, 'import');
        const options: ImportOptions = {
          actor,
          fileName,
          ...(flags.batch === undefined ? {} : { batch: flags.batch }),
          ...(state === undefined ? {} : { state }),
          ...(flags.exportId === undefined ? {} : { exportId: flags.exportId }),
          passphrase: async () => {
            const p = await readSecret({
              file: flags.passphraseFile,
              flag: '--passphrase-file',
              env: config.secrets.bundlePassphrase,
              envName: ENV_SECRETS.bundlePassphrase,
              prompt: 'bundle passphrase',
            });
            if (p === undefined) {
              throw new ScsError(
                'SCS_PASSPHRASE_MISSING',
                `${fileName} is a transfer bundle: give --passphrase-file FILE or env ${ENV_SECRETS.bundlePassphrase}, or run on a terminal to be asked`,
              );
            }
            return p;
          },
          onProgress: (done, total) => bar.update(done, total),
        };
        const summary = await importPsks(
          store,
          createReadStream(fileName, { highWaterMark: 256 * 1024 }),
          options,
        ).finally(() => bar.stop());
        if (flags.json === true) {
          io.out(JSON.stringify(summary));
          return;
        }
        if (summary.format === 'setup-bin') {
          for (const c of summary.consumed) {
            io.err(
              `  record ${c.number}: consumed, PID ${c.pid === null ? 'unknown (zeroed, not in any export log)' : formatPid(c.pid)}${c.state === null ? '' : ` (${c.state} here)`}`,
            );
          }
        }
        io.out(describeImport(summary));
      });
    });
}
