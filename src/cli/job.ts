import type { Command } from 'commander';
import { ScsError } from '../errors.ts';
import { formatPid } from '../psk/pid.ts';
import { JOB_STATES, type JobRow, type JobState } from '../store/provisioning/types.ts';
import { parseUuidArgument } from './device.ts';
import type { Io } from './io.ts';
import { parseCount, withStore } from './psk-db.ts';

/** `amt-scs job list`: provisioning jobs, newest first. */
export function registerJobCommands(program: Command, io: Io): void {
  const job = program.command('job').description('provisioning jobs');
  job
    .command('list')
    .description('jobs, newest first')
    .option('--state <state>', `only this state: ${JOB_STATES.join(', ')}`)
    .option('--device <uuid>', 'only this device')
    .option('--limit <n>', 'at most this many (default 100)')
    .option('--json', 'JSON array')
    .action(async (flags: { state?: string; device?: string; limit?: string; json?: boolean }, command: Command) => {
      if (flags.state !== undefined && !(JOB_STATES as readonly string[]).includes(flags.state)) {
        throw new ScsError(
          'SCS_ARGUMENT_INVALID',
          `--state must be one of ${JOB_STATES.join(', ')}, got "${flags.state}"`,
        );
      }
      const limit = flags.limit === undefined ? 100 : parseCount(flags.limit, '--limit', 10_000);
      await withStore(command, io, async (store) => {
        const rows = await store.jobs.list({
          order: 'desc',
          limit,
          ...(flags.state === undefined ? {} : { state: flags.state as JobState }),
          ...(flags.device === undefined ? {} : { deviceUuid: parseUuidArgument(flags.device) }),
        });
        if (flags.json) {
          io.out(JSON.stringify(rows.map(jobJson), null, 2));
          return;
        }
        for (const j of rows) {
          io.out(
            `#${String(j.id).padEnd(6)} ${j.state.padEnd(9)} ${j.deviceUuid} ${j.address.padEnd(15)} PID ${formatPid(j.pid)} ` +
              `step ${(j.step ?? '-').padEnd(17)} attempts ${j.attempts} ${j.updatedAt.toISOString()}` +
              `${j.errorCode === null ? '' : `  ${j.errorCode}: ${j.errorMessage ?? ''}`}`,
          );
        }
        const counts = await store.jobs.countByState();
        io.err(JOB_STATES.map((s) => `${s} ${counts[s]}`).join(', '));
      });
    });
}

function jobJson(j: JobRow): Record<string, unknown> {
  return {
    ...j,
    leaseUntil: j.leaseUntil?.toISOString() ?? null,
    createdAt: j.createdAt.toISOString(),
    updatedAt: j.updatedAt.toISOString(),
    finishedAt: j.finishedAt?.toISOString() ?? null,
  };
}
