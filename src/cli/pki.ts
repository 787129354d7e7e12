import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ScsError } from '../errors.ts';
import { importProvisioningCertificate } from '../pki/service.ts';
import { Secret } from '../secret.ts';
import type { PkiCertRow } from '../store/pki/pki.ts';
import type { Io } from './io.ts';
import { withStore } from './psk-db.ts';

interface ImportFlags {
  passphraseEnv?: string;
  dnsSuffix: string;
}

function daysLeft(row: PkiCertRow, now: number): number {
  return Math.floor((row.notAfter.getTime() - now) / 86_400_000);
}

export function pkiRowJson(row: PkiCertRow, now = Date.now()): Record<string, string | number> {
  return {
    id: row.id,
    dnsSuffix: row.dnsSuffix,
    commonName: row.leafCommonName,
    rootSha256: row.rootSha256,
    rootSha1: row.rootSha1,
    notBefore: row.notBefore.toISOString(),
    notAfter: row.notAfter.toISOString(),
    daysLeft: daysLeft(row, now),
    createdAt: row.createdAt.toISOString(),
    createdBy: row.createdBy,
  };
}

/** `pki import|list|remove`: provisioning certificates for certificate-based setup (docs/pki.md). */
export function registerPkiCommands(program: Command, io: Io): void {
  const pki = program
    .command('pki')
    .description('provisioning certificates for AMT remote configuration (version 3 hellos): import, list, remove');

  pki
    .command('import <file>')
    .description(
      'import a provisioning certificate with its chain and key (PKCS#12 .pfx/.p12, or PEM with the key); the key is stored encrypted',
    )
    .requiredOption('--dns-suffix <domain>', 'the DNS domain the certificate is valid for (its CN must be inside it)')
    .option(
      '--passphrase-env <VAR>',
      'environment variable holding the PKCS#12 passphrase (never a command-line argument)',
    )
    .action(async (file: string, flags: ImportFlags, command: Command) => {
      let passphrase: Secret<string> | undefined;
      if (flags.passphraseEnv !== undefined) {
        const v = process.env[flags.passphraseEnv];
        if (v === undefined) {
          throw new ScsError('SCS_PASSPHRASE_MISSING', `environment variable ${flags.passphraseEnv} is not set`);
        }
        passphrase = new Secret(v);
      }
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (cause) {
        throw new ScsError('SCS_FILE_IO', `cannot read ${file}`, { cause });
      }
      await withStore(command, io, async (store, { actor }) => {
        const row = await importProvisioningCertificate(store, {
          file: bytes,
          passphrase,
          dnsSuffix: flags.dnsSuffix,
          actor,
        });
        io.out(`imported provisioning certificate ${row.id}: CN ${row.leafCommonName}, DNS suffix ${row.dnsSuffix}`);
        io.out(`  root SHA-256 ${row.rootSha256}`);
        io.out(`  root SHA-1   ${row.rootSha1}`);
        io.out(`  valid until  ${row.notAfter.toISOString()} (${daysLeft(row, Date.now())} days)`);
      });
    });

  pki
    .command('list')
    .description('list provisioning certificates: root hashes (SHA-256, SHA-1), DNS suffix, expiry')
    .option('--json', 'a JSON array instead of text')
    .action(async (flags: { json?: boolean }, command: Command) => {
      await withStore(command, io, async (store) => {
        const rows = await store.pki.list();
        const now = Date.now();
        if (flags.json === true) {
          io.out(
            JSON.stringify(
              rows.map((r) => pkiRowJson(r, now)),
              null,
              2,
            ),
          );
          return;
        }
        if (rows.length === 0) {
          io.out('no provisioning certificates; import one with `amt-scs pki import <file> --dns-suffix <domain>`');
          return;
        }
        for (const r of rows) {
          const left = daysLeft(r, now);
          io.out(
            `${r.id}  ${r.dnsSuffix}  CN ${r.leafCommonName}  expires ${r.notAfter.toISOString()} (${left < 0 ? 'EXPIRED' : `${left} days`})`,
          );
          io.out(`    root SHA-256 ${r.rootSha256}`);
          io.out(`    root SHA-1   ${r.rootSha1}`);
        }
      });
    });

  pki
    .command('remove <id>')
    .description('delete a provisioning certificate and its key')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const n = /^\d+$/.test(id) ? Number(id) : NaN;
      if (!Number.isSafeInteger(n)) throw new ScsError('SCS_ARGUMENT_INVALID', `"${id}" is not a certificate id`);
      await withStore(command, io, async (store, { actor }) => {
        await store.pki.remove(n, { actor });
        io.out(`removed provisioning certificate ${n}`);
      });
    });
}
