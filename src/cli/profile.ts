import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ScsError } from '../errors.ts';
import { Secret } from '../secret.ts';
import {
  PROFILE_SECRET_NAMES,
  type ProfileInput,
  type ProfileRow,
  type ProfileSecretName,
  type ProfileSettings,
} from '../store/provisioning/profile.ts';
import type { Io } from './io.ts';
import { withStore } from './psk-db.ts';

/**
 * `amt-scs profile list|show|create|set|delete|bind|unbind`: provisioning profiles
 * (docs/provisioning.md, "Profiles"). Passwords are never taken on the command line (where `ps`
 * would show them): they come from an environment variable or a file.
 */

/** Field flags, one per ProfileSettings field. */
const FIELD_FLAGS: readonly { field: keyof ProfileSettings; flag: string; help: string }[] = [
  { field: 'adminUser', flag: '--admin-user <name>', help: 'admin account set on the device (1-16 ASCII)' },
  { field: 'adminPassword', flag: '--admin-password <mode>', help: 'random (per device, escrowed) | fixed' },
  { field: 'mebxPassword', flag: '--mebx-password <mode>', help: 'SetMEBxPassword: keep (skip) | random | fixed' },
  { field: 'hostNamePattern', flag: '--host-name-pattern <p>', help: 'e.g. amt-{uuid8}, {uuid}, {hostname}' },
  { field: 'domainName', flag: '--domain <name>', help: 'DNS domain to set ("" keeps the device\'s)' },
  { field: 'timeSync', flag: '--time-sync <on|off>', help: 'set the device clock' },
  { field: 'tls', flag: '--tls <on|off>', help: 'TLS certificate from the SCS CA, TLS on' },
  { field: 'certificateValidityDays', flag: '--certificate-validity-days <n>', help: '1..3650' },
  { field: 'renewPsk', flag: '--renew-psk <on|off>', help: 'give the device a new PSK (SetTLSPSK)' },
  { field: 'onNoRenewalPsk', flag: '--on-no-renewal-psk <fail|skip>', help: 'when no PSK is left for renewal' },
];

const SECRET_FLAGS: Readonly<Record<ProfileSecretName, string>> = {
  currentMebxPassword: 'current-mebx-password',
  adminPassword: 'fixed-admin-password',
  newMebxPassword: 'new-mebx-password',
};

function camel(kebab: string): string {
  return kebab.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function withFieldOptions(cmd: Command): Command {
  for (const f of FIELD_FLAGS) cmd.option(f.flag, f.help);
  for (const [name, flag] of Object.entries(SECRET_FLAGS)) {
    cmd.option(`--${flag}-env <VAR>`, `${name}: read it from this environment variable`);
    cmd.option(`--${flag}-file <FILE>`, `${name}: read it from this file (first line)`);
    cmd.option(`--clear-${flag}`, `remove ${name}`);
  }
  return cmd;
}

type Flags = Record<string, string | boolean | undefined>;

/** The profile change the flags ask for; secrets read from env or file, never echoed. */
export function profileInput(
  flags: Flags,
  env: Readonly<Record<string, string | undefined>> = process.env,
): ProfileInput {
  const settings: Record<string, unknown> = {};
  for (const f of FIELD_FLAGS) {
    const key = camel(f.flag.slice(2, f.flag.indexOf(' ')));
    const v = flags[key];
    if (typeof v === 'string') settings[f.field] = v;
  }
  const secrets: Partial<Record<ProfileSecretName, Secret<string> | null>> = {};
  for (const name of PROFILE_SECRET_NAMES) {
    const flag = SECRET_FLAGS[name];
    const fromEnv = flags[camel(`${flag}-env`)];
    const fromFile = flags[camel(`${flag}-file`)];
    const clear = flags[camel(`clear-${flag}`)] === true;
    const given = [typeof fromEnv === 'string', typeof fromFile === 'string', clear].filter(Boolean).length;
    if (given > 1) {
      throw new ScsError('SCS_ARGUMENT_INVALID', `give only one of --${flag}-env, --${flag}-file, --clear-${flag}`);
    }
    if (clear) secrets[name] = null;
    if (typeof fromEnv === 'string') {
      const v = env[fromEnv];
      if (v === undefined || v === '') {
        throw new ScsError('SCS_ARGUMENT_INVALID', `--${flag}-env ${fromEnv}: the variable is not set`);
      }
      secrets[name] = new Secret(v);
    }
    if (typeof fromFile === 'string') {
      let text: string;
      try {
        text = readFileSync(fromFile, 'utf8');
      } catch (cause) {
        throw new ScsError('SCS_FILE_IO', `--${flag}-file ${fromFile}: cannot read it`, { cause });
      }
      secrets[name] = new Secret(text.split(/\r?\n/)[0] ?? '');
    }
  }
  return {
    ...(Object.keys(settings).length === 0 ? {} : { settings }),
    ...(Object.keys(secrets).length === 0 ? {} : { secrets }),
  };
}

function describeProfile(p: ProfileRow): string[] {
  const s = p.settings;
  const secrets = PROFILE_SECRET_NAMES.map((n) => `${n}=${p.secretsSet[n] ? 'set' : 'unset'}`).join(' ');
  return [
    `profile ${p.name} (version ${p.version}, updated ${p.updatedAt.toISOString()})`,
    ...Object.entries(s).map(([k, v]) => `  ${k.padEnd(24)} ${JSON.stringify(v)}`),
    `  secrets                  ${secrets}`,
  ];
}

function json(p: ProfileRow): unknown {
  return { ...p, createdAt: p.createdAt.toISOString(), updatedAt: p.updatedAt.toISOString() };
}

export function registerProfileCommands(program: Command, io: Io): void {
  const profile = program.command('profile').description('provisioning profiles: what the server does to a device');

  profile
    .command('list')
    .description('every profile with its main settings')
    .option('--json', 'JSON array')
    .action(async (flags: { json?: boolean }, command: Command) => {
      await withStore(command, io, async (store) => {
        const rows = await store.profiles.list();
        if (flags.json) return io.out(JSON.stringify(rows.map(json), null, 2));
        for (const p of rows) {
          const s = p.settings;
          io.out(
            `${p.name.padEnd(16)} v${p.version}  admin=${s.adminUser}/${s.adminPassword} mebx=${s.mebxPassword} ` +
              `host=${s.hostNamePattern} domain=${s.domainName || '-'} tls=${s.tls ? 'on' : 'off'} ` +
              `renew=${s.renewPsk ? 'on' : 'off'} currentMebx=${p.secretsSet.currentMebxPassword ? 'set' : 'unset'}`,
          );
        }
      });
    });

  profile
    .command('show')
    .description('one profile (secrets only as set/unset)')
    .argument('<name>')
    .option('--json', 'JSON object')
    .action(async (name: string, flags: { json?: boolean }, command: Command) => {
      await withStore(command, io, async (store) => {
        const p = await store.profiles.require(name);
        if (flags.json) io.out(JSON.stringify(json(p), null, 2));
        else for (const line of describeProfile(p)) io.out(line);
      });
    });

  withFieldOptions(profile.command('create').description('create a profile (unset fields take the defaults)'))
    .argument('<name>')
    .action(async (name: string, flags: Flags, command: Command) => {
      const input = profileInput(flags);
      await withStore(command, io, async (store, { actor }) => {
        const p = await store.profiles.create(name, input, { actor });
        for (const line of describeProfile(p)) io.out(line);
      });
    });

  withFieldOptions(profile.command('set').description('change fields of a profile'))
    .argument('<name>')
    .option('--expect-version <n>', 'fail with SCS_PROFILE_CONFLICT if the profile is not at this version')
    .action(async (name: string, flags: Flags, command: Command) => {
      const input = profileInput(flags);
      const expect = flags.expectVersion;
      const expectedVersion = typeof expect === 'string' ? Number(expect) : undefined;
      if (expectedVersion !== undefined && (!Number.isInteger(expectedVersion) || expectedVersion < 1)) {
        throw new ScsError(
          'SCS_ARGUMENT_INVALID',
          `--expect-version must be a whole number from 1, got "${String(expect)}"`,
        );
      }
      if (input.settings === undefined && input.secrets === undefined) {
        throw new ScsError('SCS_ARGUMENT_INVALID', 'nothing to change: give at least one field option');
      }
      await withStore(command, io, async (store, { actor }) => {
        const p = await store.profiles.update(name, input, {
          actor,
          ...(expectedVersion === undefined ? {} : { expectedVersion }),
        });
        for (const line of describeProfile(p)) io.out(line);
      });
    });

  profile
    .command('delete')
    .description('delete a profile (not default, not one a batch is bound to)')
    .argument('<name>')
    .action(async (name: string, _flags: unknown, command: Command) => {
      await withStore(command, io, async (store, { actor }) => {
        await store.profiles.delete(name, { actor });
        io.out(`deleted profile ${name}`);
      });
    });

  profile
    .command('bind')
    .description('provision the PSKs of these batches with this profile')
    .argument('<name>')
    .argument('<batch...>')
    .action(async (name: string, batches: string[], _flags: unknown, command: Command) => {
      await withStore(command, io, async (store, { actor }) => {
        for (const b of batches) await store.profiles.bindBatch(b, name, { actor });
        io.out(`bound ${batches.length} batch(es) to profile ${name}`);
      });
    });

  profile
    .command('unbind')
    .description('these batches use the server default profile (--profile) again')
    .argument('<batch...>')
    .action(async (batches: string[], _flags: unknown, command: Command) => {
      await withStore(command, io, async (store, { actor }) => {
        for (const b of batches) await store.profiles.bindBatch(b, null, { actor });
        io.out(`unbound ${batches.length} batch(es)`);
      });
    });
}
