import type { Command } from 'commander';
import { createLogger } from '../log.ts';
import { ensureCa } from '../main.ts';
import {
  renewCertificate,
  rotatePassword,
  syncTime,
  unprovisionDevice,
  type DeviceOpsDeps,
} from '../maintenance/device-ops.ts';
import type { Store } from '../store/store.ts';
import { parseUuidArgument } from './device.ts';
import type { Io } from './io.ts';
import { parseCount, withStore, type StoreContext } from './psk-db.ts';

/**
 * `amt-scs device unprovision|rotate-password|renew-cert|sync-time <uuid>`: life after
 * provisioning (docs/pki.md, "After provisioning"), each audited. They connect to the device
 * the way it is reached now (TLS with the certificate this server's CA issued, else TLS-PSK with
 * the renewed PSK) as the escrowed admin.
 */
async function deps(store: Store, ctx: StoreContext): Promise<DeviceOpsDeps> {
  const { ca, issuer } = await ensureCa(store, ctx.actor);
  return { store, ca, issuer, config: ctx.config, log: createLogger(ctx.config.logLevel), actor: ctx.actor };
}

export function registerDeviceOpsCommands(program: Command, io: Io): void {
  const device = program.commands.find((c) => c.name() === 'device') ?? program.command('device');

  device
    .command('unprovision <uuid>')
    .description(
      'unprovision a device: full (factory / certificate setup mode) or --partial (setup mode with its renewed PSK: the server re-provisions it from its next hello)',
    )
    .option('--partial', 'PartialUnprovision: keep the admin account, host/domain and the renewed PSK')
    .action(async (uuid: string, flags: { partial?: boolean }, command: Command) => {
      const id = parseUuidArgument(uuid);
      await withStore(command, io, async (store, ctx) => {
        await unprovisionDevice(await deps(store, ctx), id, { partial: flags.partial === true });
        io.out(
          `device ${id} ${flags.partial === true ? 'partially unprovisioned: back in setup mode with its renewed PSK' : 'unprovisioned'}`,
        );
      });
    });

  device
    .command('rotate-password <uuid>')
    .description('set a new random admin password (escrowed first, checked by logging in with it)')
    .action(async (uuid: string, _flags: unknown, command: Command) => {
      const id = parseUuidArgument(uuid);
      await withStore(command, io, async (store, ctx) => {
        const r = await rotatePassword(await deps(store, ctx), id);
        io.out(`device ${id}: admin password rotated (escrow ${r.escrowId}; reveal it with device reveal-password)`);
      });
    });

  device
    .command('renew-cert <uuid>')
    .description('issue the device a new TLS certificate for a new device key, and switch to it')
    .option('--within-days <n>', 'only if the current certificate expires within n days')
    .action(async (uuid: string, flags: { withinDays?: string }, command: Command) => {
      const id = parseUuidArgument(uuid);
      const withinDays = flags.withinDays === undefined ? 0 : parseCount(flags.withinDays, '--within-days', 3650);
      await withStore(command, io, async (store, ctx) => {
        const r = await renewCertificate(await deps(store, ctx), id, { withinDays });
        io.out(
          r.renewed
            ? `device ${id}: new TLS certificate, valid until ${r.notAfter?.toISOString() ?? '?'}`
            : `device ${id}: certificate valid until ${r.notAfter?.toISOString() ?? '?'}, not within ${withinDays} days: kept`,
        );
      });
    });

  device
    .command('sync-time <uuid>')
    .description('set the device clock from this server (GetLowAccuracyTimeSynch + SetHighAccuracyTimeSynch)')
    .action(async (uuid: string, _flags: unknown, command: Command) => {
      const id = parseUuidArgument(uuid);
      await withStore(command, io, async (store, ctx) => {
        const r = await syncTime(await deps(store, ctx), id);
        io.out(`device ${id}: clock set (it was ${r.offsetSeconds} s off)`);
      });
    });
}
