import { userInfo } from 'node:os';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { Config } from '../config.ts';
import { ScsError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { formatPid, parsePid, type Pid } from '../psk/pid.ts';
import { formatPps } from '../psk/pps.ts';
import { generatePsks, GENERATE_MAX, listPsks, revokePsks } from '../psk/service.ts';
import { defaultBatchName } from '../store/batch.ts';
import { PSK_STATES, type PskState } from '../store/lifecycle.ts';
import { openStore } from '../store/open.ts';
import type { PskRow, PskWithPps, Store } from '../store/store.ts';
import { configFrom } from './context.ts';
import type { Io } from './io.ts';

/** Who the audit log names for CLI actions: the OS account running the command. */
export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    // A container user without a passwd entry has no name.
    return `cli:uid-${process.getuid?.() ?? 'unknown'}`;
  }
}

export interface StoreContext {
  readonly config: Config;
  readonly actor: string;
}

/**
 * Opens the store for one command and closes it afterwards. The very first start creates the
 * master key: the operator is told where it is and to back it up (stderr, not stdout, so piped
 * output stays clean). Other command groups (export, import) use this too.
 */
export async function withStore<T>(
  command: Command,
  io: Io,
  fn: (store: Store, context: StoreContext) => Promise<T>,
): Promise<T> {
  const config = configFrom(command);
  const log = createLogger(config.logLevel);
  const { store, masterKey } = await openStore(config, log);
  if (masterKey.created) {
    io.err(`created master key ${masterKey.file} (mode 0600)`);
    io.err('  back it up now, apart from the database: without it the PSKs in the database cannot be read');
  }
  try {
    return await fn(store, { config, actor: cliActor() });
  } finally {
    await store.close();
  }
}

export function parseCount(text: string, what: string, max: number): number {
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `${what} must be a whole number 1..${max}, got "${text}"`);
  }
  return n;
}

function parseState(text: string): PskState {
  const s = text.trim().toLowerCase().replace('-', '_');
  if (!(PSK_STATES as readonly string[]).includes(s)) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `--state must be one of ${PSK_STATES.join(', ')}, got "${text}"`);
  }
  return s as PskState;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

interface GenerateFlags {
  count: string;
  batch?: string;
}

interface ListFlags {
  state?: string;
  batch?: string;
  json?: boolean;
  reveal?: boolean;
  limit?: string;
}

/** The PSK database commands, on the `psk` group (src/cli/psk.ts calls this). */
export function registerPskDbCommands(psk: Command, io: Io): void {
  psk
    .command('generate')
    .description('generate new PID/PPS pairs (CSPRNG) into a batch of the database')
    .requiredOption('--count <n>', `how many PSKs (1..${GENERATE_MAX})`)
    .option('--batch <name>', 'batch to add them to (created if new; default gen-<date>-<time>)')
    .action(async (flags: GenerateFlags, command: Command) => {
      const count = parseCount(flags.count, '--count', GENERATE_MAX);
      const batch = flags.batch ?? defaultBatchName('gen');
      await withStore(command, io, async (store, { actor }) => {
        const started = performance.now();
        let bar: cliProgress.SingleBar | undefined;
        const result = await generatePsks(store, {
          count,
          batch,
          actor,
          onProgress: (done, total) => {
            // A bar only on a terminal, and only once the run takes more than a moment.
            if (bar === undefined && io.isTty && performance.now() - started > 500 && done < total) {
              bar = new cliProgress.SingleBar(
                { stream: process.stderr, format: 'generate [{bar}] {percentage}% | {value}/{total} | ETA {eta}s' },
                cliProgress.Presets.shades_classic,
              );
              bar.start(total, done);
            }
            bar?.update(done);
          },
        }).finally(() => bar?.stop());
        const collisions = result.collisions > 0 ? ` (${result.collisions} PID collisions drawn again)` : '';
        io.out(
          `generated ${result.generated} PSKs in batch "${result.batch}" in ${seconds(performance.now() - started)}${collisions}`,
        );
      });
    });

  psk
    .command('list')
    .description('list PSKs (PPS only with --reveal; every reveal is audited)')
    .option('--state <state>', `only this state: ${PSK_STATES.join(', ')}`)
    .option('--batch <name>', 'only this batch')
    .option('--limit <n>', 'at most this many')
    .option('--reveal', 'include the PPS (audited as psk.reveal)')
    .option('--json', 'a JSON array of objects instead of a table')
    .action(async (flags: ListFlags, command: Command) => {
      const state = flags.state === undefined ? undefined : parseState(flags.state);
      const limit = flags.limit === undefined ? undefined : parseCount(flags.limit, '--limit', Number.MAX_SAFE_INTEGER);
      await withStore(command, io, async (store, { actor }) => {
        if (flags.batch !== undefined && (await store.batches.get(flags.batch)) === undefined) {
          throw new ScsError('SCS_BATCH_NOT_FOUND', `no batch named "${flags.batch}"`);
        }
        const filter = {
          ...(state === undefined ? {} : { state }),
          ...(flags.batch === undefined ? {} : { batch: flags.batch }),
          ...(limit === undefined ? {} : { limit }),
        };
        const rows: AsyncIterable<PskRow | PskWithPps> = flags.reveal
          ? store.psks.iterateWithPps(filter, { actor, purpose: 'cli psk list' })
          : listPsks(store, filter);
        await printPsks(io, rows, { json: flags.json === true, reveal: flags.reveal === true });
      });
    });

  psk
    .command('revoke')
    .description('revoke PSKs (available, exported or in use) so they are never handed out again; all or none')
    .argument('<pid...>', 'PIDs, XXXX-XXXX or 8 characters')
    .option('--reason <text>', 'recorded in the audit log')
    .action(async (pidInputs: string[], flags: { reason?: string }, command: Command) => {
      const pids: Pid[] = pidInputs.map((p) => parsePid(p));
      await withStore(command, io, async (store, { actor }) => {
        const n = await revokePsks(store, pids, {
          actor,
          ...(flags.reason === undefined ? {} : { reason: flags.reason }),
        });
        io.out(`revoked ${n} PSK${n === 1 ? '' : 's'}`);
      });
    });

  psk
    .command('stats')
    .description('PSK counts by batch and state')
    .option('--json', 'JSON instead of a table')
    .action(async (flags: { json?: boolean }, command: Command) => {
      await withStore(command, io, async (store) => {
        const batches = await store.batches.list();
        const totals = Object.fromEntries(PSK_STATES.map((s) => [s, 0])) as Record<PskState, number>;
        for (const b of batches) for (const s of PSK_STATES) totals[s] += b.counts[s];
        const total = batches.reduce((a, b) => a + b.total, 0);
        if (flags.json) {
          io.out(
            JSON.stringify({
              batches: batches.map((b) => ({
                name: b.name,
                createdAt: b.createdAt.toISOString(),
                profile: b.profile,
                counts: b.counts,
                total: b.total,
              })),
              counts: totals,
              total,
            }),
          );
          return;
        }
        const nameWidth = Math.max(5, ...batches.map((b) => b.name.length));
        const cols = PSK_STATES.map((s) => Math.max(s.length, 9));
        const line = (
          name: string,
          created: string,
          counts: readonly (string | number)[],
          t: string | number,
        ): string =>
          [
            name.padEnd(nameWidth),
            created.padEnd(20),
            ...counts.map((c, i) => String(c).padStart(cols[i] ?? 9)),
            String(t).padStart(9),
          ].join('  ');
        io.out(line('BATCH', 'CREATED', PSK_STATES, 'total'));
        for (const b of batches) {
          io.out(
            line(
              b.name,
              b.createdAt.toISOString().slice(0, 19) + 'Z',
              PSK_STATES.map((s) => b.counts[s]),
              b.total,
            ),
          );
        }
        io.out(
          line(
            'TOTAL',
            '',
            PSK_STATES.map((s) => totals[s]),
            total,
          ),
        );
      });
    });
}

async function printPsks(
  io: Io,
  rows: AsyncIterable<PskRow | PskWithPps>,
  options: { json: boolean; reveal: boolean },
): Promise<void> {
  let n = 0;
  if (options.json) {
    // Streamed as a JSON array, one object per line, so a million rows never sit in memory.
    io.out('[');
    let previous: string | undefined;
    for await (const r of rows) {
      const o: Record<string, string | null> = {
        pid: formatPid(r.pid),
        state: r.state,
        batch: r.batch,
        deviceUuid: r.deviceUuid,
        createdAt: r.createdAt.toISOString(),
        updatedAt: r.updatedAt.toISOString(),
      };
      if ('pps' in r) o.pps = formatPps(r.pps.reveal());
      if (previous !== undefined) io.out(`${previous},`);
      previous = `  ${JSON.stringify(o)}`;
      n++;
    }
    if (previous !== undefined) io.out(previous);
    io.out(']');
    return;
  }
  const header = ['PID      ', 'STATE      ', 'BATCH               ', 'CREATED             '];
  if (options.reveal) header.push('PPS');
  io.out(header.join('  ').trimEnd());
  for await (const r of rows) {
    const cells = [
      formatPid(r.pid),
      r.state.padEnd(11),
      r.batch.padEnd(20),
      `${r.createdAt.toISOString().slice(0, 19)}Z`,
    ];
    if ('pps' in r) cells.push(formatPps(r.pps.reveal()));
    io.out(cells.join('  '));
    n++;
  }
  io.err(`${n} PSK${n === 1 ? '' : 's'}`);
}
