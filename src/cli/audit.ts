import type { Command } from 'commander';
import { ScsError } from '../errors.ts';
import { formatPid, parsePid } from '../psk/pid.ts';
import type { AuditEntry, AuditFilter } from '../store/store.ts';
import type { Io } from './io.ts';
import { parseCount, withStore } from './psk-db.ts';

/** PIDs shown per entry in the table; --json prints them all. */
const PIDS_SHOWN = 4;

function formatEntry(e: AuditEntry): string {
  const pids =
    e.pids.length === 0
      ? '-'
      : `${e.pids.length} PID${e.pids.length === 1 ? '' : 's'}: ${e.pids.slice(0, PIDS_SHOWN).map(formatPid).join(' ')}` +
        (e.pids.length > PIDS_SHOWN ? ` +${e.pids.length - PIDS_SHOWN} more` : '');
  const detail = Object.entries(e.detail)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
  return `#${e.seq}  ${e.at.toISOString()}  ${e.actor}  ${e.action}  ${pids}${detail === '' ? '' : `  ${detail}`}`;
}

export function registerAuditCommands(program: Command, io: Io): void {
  const audit = program.command('audit').description('the hash-chained audit log of the PSK database');

  audit
    .command('verify')
    .description('walk the whole hash chain; exit 1 and name the first broken entry if it does not verify')
    .action(async (_flags: unknown, command: Command) => {
      await withStore(command, io, async (store) => {
        const r = await store.audit.verify();
        if (!r.ok) {
          throw new ScsError(
            'SCS_AUDIT_CHAIN_BROKEN',
            `audit chain broken at seq ${r.brokenSeq}: ${r.reason} (${r.entries} entries verified before it)`,
            { details: { brokenSeq: r.brokenSeq, entries: r.entries } },
          );
        }
        io.out(`audit chain verified: ${r.entries} entries, head seq ${r.headSeq}, hash ${r.headHash}`);
      });
    });

  audit
    .command('list')
    .description('the newest audit entries, oldest of them first')
    .option('--pid <pid>', 'only entries that list this PID')
    .option('--action <action>', 'only this action (psk.generate, psk.reveal, psk.state, ...)')
    .option('--limit <n>', 'how many entries (default 50)')
    .option('--json', 'a JSON array with every PID of every entry')
    .action(async (flags: { pid?: string; action?: string; limit?: string; json?: boolean }, command: Command) => {
      const filter: AuditFilter = {
        order: 'desc',
        limit: flags.limit === undefined ? 50 : parseCount(flags.limit, '--limit', 10_000),
        ...(flags.pid === undefined ? {} : { pid: parsePid(flags.pid) }),
        ...(flags.action === undefined ? {} : { action: flags.action }),
      };
      await withStore(command, io, async (store) => {
        const entries = (await store.audit.list(filter)).reverse();
        if (flags.json) {
          io.out(
            JSON.stringify(
              entries.map((e) => ({ ...e, at: e.at.toISOString(), pids: e.pids.map(formatPid) })),
              null,
              2,
            ),
          );
          return;
        }
        for (const e of entries) io.out(formatEntry(e));
        if (entries.length === 0) io.err('no audit entries match');
      });
    });
}
