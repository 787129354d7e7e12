import type { Command } from 'commander';
import { ScsError } from '../errors.ts';
import { formatPid } from '../psk/pid.ts';
import { DEVICE_STATES, type DeviceRow, type DeviceState } from '../store/provisioning/types.ts';
import type { Io } from './io.ts';
import { parseCount, withStore } from './psk-db.ts';

/**
 * `amt-scs device list|show|reveal-password`: the devices the server has configured (or tried
 * to). Revealing an admin password is its own command and is audited (device.reveal_password).
 */

function parseDeviceState(text: string): DeviceState {
  if (!(DEVICE_STATES as readonly string[]).includes(text)) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `--state must be one of ${DEVICE_STATES.join(', ')}, got "${text}"`);
  }
  return text as DeviceState;
}

export function parseUuidArgument(text: string): string {
  const t = text.trim().toLowerCase();
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(t)) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `"${text}" is not a device UUID (8-4-4-4-12 hex digits)`);
  }
  return t;
}

function deviceJson(d: DeviceRow): Record<string, unknown> {
  return {
    ...d,
    certNotAfter: d.certNotAfter?.toISOString() ?? null,
    provisionedAt: d.provisionedAt?.toISOString() ?? null,
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
  };
}

export function registerDeviceCommands(program: Command, io: Io): void {
  const device = program.command('device').description('devices the server configured (or tried to)');

  device
    .command('list')
    .description('devices, by UUID')
    .option('--state <state>', `only this state: ${DEVICE_STATES.join(', ')}`)
    .option('--limit <n>', 'at most this many (default 1000)')
    .option('--json', 'JSON array')
    .action(async (flags: { state?: string; limit?: string; json?: boolean }, command: Command) => {
      const state = flags.state === undefined ? undefined : parseDeviceState(flags.state);
      const limit = flags.limit === undefined ? 1000 : parseCount(flags.limit, '--limit', 10_000);
      await withStore(command, io, async (store) => {
        const rows = await store.devices.list({ limit, ...(state === undefined ? {} : { state }) });
        if (flags.json) return io.out(JSON.stringify(rows.map(deviceJson), null, 2));
        for (const d of rows) {
          io.out(
            `${d.uuid}  ${d.state.padEnd(12)} ${(d.address ?? '-').padEnd(15)} ` +
              `${d.hostName ?? '-'}${d.domainName ? `.${d.domainName}` : ''}  AMT ${d.amtVersion ?? '-'}  ` +
              `PSK ${d.pid === null ? '-' : formatPid(d.pid)}  ${d.provisionedAt?.toISOString() ?? ''}`,
          );
        }
        const counts = await store.devices.countByState();
        io.err(DEVICE_STATES.map((s) => `${s} ${counts[s]}`).join(', '));
      });
    });

  device
    .command('show')
    .description('one device: its record, certificate and history (audit entries)')
    .argument('<uuid>')
    .option('--json', 'JSON object')
    .action(async (uuidText: string, flags: { json?: boolean }, command: Command) => {
      const uuid = parseUuidArgument(uuidText);
      await withStore(command, io, async (store) => {
        const d = await store.devices.get(uuid);
        if (d === undefined) throw new ScsError('SCS_DEVICE_NOT_FOUND', `no device with UUID ${uuid}`);
        const history = (await store.devices.history(uuid, 200)).reverse();
        const jobs = await store.jobs.list({ deviceUuid: uuid, order: 'desc', limit: 20 });
        if (flags.json) {
          io.out(
            JSON.stringify(
              {
                device: deviceJson(d),
                jobs: jobs.map((j) => ({
                  ...j,
                  createdAt: j.createdAt.toISOString(),
                  updatedAt: j.updatedAt.toISOString(),
                })),
                history: history.map((e) => ({ ...e, at: e.at.toISOString() })),
              },
              null,
              2,
            ),
          );
          return;
        }
        const rows: [string, string][] = [
          ['uuid', d.uuid],
          ['state', d.state],
          ['address', d.address ?? '-'],
          ['AMT version', d.amtVersion ?? '-'],
          ['host name', d.hostName ?? '-'],
          ['domain', d.domainName || '-'],
          ['profile', d.profile ?? '-'],
          ['admin user', d.adminUser ?? '-'],
          ['credentials', d.adminEscrowId === null ? '-' : `escrow #${d.adminEscrowId} (device reveal-password)`],
          ['PSK held', d.pid === null ? '-' : formatPid(d.pid)],
          [
            'certificate',
            d.certFingerprint === null
              ? '-'
              : `SHA-256 ${d.certFingerprint}, until ${d.certNotAfter?.toISOString() ?? '?'}`,
          ],
          ['provisioned', d.provisionedAt?.toISOString() ?? '-'],
          ['last job', d.lastJobId === null ? '-' : `#${d.lastJobId}`],
        ];
        for (const [k, v] of rows) io.out(`${k.padEnd(13)} ${v}`);
        io.out('jobs:');
        for (const j of jobs) {
          io.out(
            `  #${j.id} ${j.state} step ${j.step ?? '-'} attempts ${j.attempts} PID ${formatPid(j.pid)}` +
              `${j.errorCode === null ? '' : ` ${j.errorCode}: ${j.errorMessage ?? ''}`}`,
          );
        }
        io.out('history:');
        for (const e of history) {
          const detail = Object.entries(e.detail)
            .filter(([k]) => k !== 'uuid')
            .map(([k, v]) => `${k}=${String(v)}`)
            .join(' ');
          io.out(`  #${e.seq} ${e.at.toISOString()} ${e.actor} ${e.action} ${detail}`);
        }
      });
    });

  device
    .command('reveal-password')
    .description('print the admin user and password the device uses (audited as device.reveal_password)')
    .argument('<uuid>')
    .option('--reason <text>', 'why (recorded in the audit entry)')
    .action(async (uuidText: string, flags: { reason?: string }, command: Command) => {
      const uuid = parseUuidArgument(uuidText);
      await withStore(command, io, async (store, { actor }) => {
        const r = await store.devices.revealAdminPassword(uuid, {
          actor,
          ...(flags.reason === undefined ? {} : { reason: flags.reason }),
        });
        io.err(`revealed (audited): escrow #${r.escrowId}`);
        io.out(`${r.username} ${r.password.reveal()}`);
      });
    });
}
