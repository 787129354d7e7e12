import type { Command } from 'commander';
import { createToken, parseGrants, parseRole } from '../api/tokens.ts';
import { API_ROLES } from '../store/tokens/tokens.ts';
import type { Io } from './io.ts';
import { withStore } from './psk-db.ts';

interface CreateFlags {
  name: string;
  role: string;
  grant?: string[];
}

/** `token create|list|revoke`: REST API tokens (docs/api.md, "Access control"). */
export function registerTokenCommands(program: Command, io: Io): void {
  const token = program.command('token').description('REST API tokens: create (shown once), list, revoke');

  token
    .command('create')
    .description('create an API token and print it once (only its SHA-256 is stored)')
    .requiredOption('--name <name>', 'unique name among active tokens; the audit log names actions by it')
    .requiredOption('--role <role>', `one of ${API_ROLES.join(', ')}`)
    .option('--grant <grant...>', 'extra rights: reveal (read PPS and device passwords; not for viewers)')
    .action(async (flags: CreateFlags, command: Command) => {
      const role = parseRole(flags.role);
      const grants = parseGrants(flags.grant ?? [], role);
      await withStore(command, io, async (store, { actor }) => {
        const created = await createToken(store, { name: flags.name, role, grants, actor });
        // stdout holds only the token, so `TOKEN=$(amt-scs token create ...)` works.
        io.out(created.token.reveal());
        io.err(
          `created API token "${created.row.name}" (${created.row.role}${grants.length > 0 ? ` + ${grants.join(', ')}` : ''}); ` +
            'it is shown only this once',
        );
      });
    });

  token
    .command('list')
    .description('list API tokens (never the tokens themselves)')
    .option('--all', 'include revoked tokens')
    .option('--json', 'a JSON array instead of a table')
    .action(async (flags: { all?: boolean; json?: boolean }, command: Command) => {
      await withStore(command, io, async (store) => {
        const rows = await store.tokens.list({ includeRevoked: flags.all === true });
        if (flags.json) {
          io.out(
            JSON.stringify(
              rows.map((t) => ({
                name: t.name,
                role: t.role,
                grants: t.grants,
                createdAt: t.createdAt.toISOString(),
                createdBy: t.createdBy,
                lastUsedAt: t.lastUsedAt?.toISOString() ?? null,
                revokedAt: t.revokedAt?.toISOString() ?? null,
              })),
              null,
              2,
            ),
          );
          return;
        }
        const nameWidth = Math.max(4, ...rows.map((t) => t.name.length));
        const time = (d: Date | null): string => (d === null ? '-' : `${d.toISOString().slice(0, 19)}Z`);
        io.out(
          [
            'NAME'.padEnd(nameWidth),
            'ROLE    ',
            'GRANTS',
            'CREATED             ',
            'LAST USED           ',
            'REVOKED',
          ].join('  '),
        );
        for (const t of rows) {
          io.out(
            [
              t.name.padEnd(nameWidth),
              t.role.padEnd(8),
              (t.grants.join(',') || '-').padEnd(6),
              time(t.createdAt).padEnd(20),
              time(t.lastUsedAt).padEnd(20),
              time(t.revokedAt),
            ].join('  '),
          );
        }
        io.err(`${rows.length} token${rows.length === 1 ? '' : 's'}`);
      });
    });

  token
    .command('revoke')
    .description('revoke the active API token with this name; it stops working at once')
    .argument('<name>', 'token name')
    .option('--reason <text>', 'recorded in the audit log')
    .action(async (name: string, flags: { reason?: string }, command: Command) => {
      await withStore(command, io, async (store, { actor }) => {
        const row = await store.tokens.revoke(name, {
          actor,
          ...(flags.reason === undefined ? {} : { reason: flags.reason }),
        });
        io.out(`revoked API token "${row.name}" (${row.role})`);
      });
    });
}
