import type { Command } from 'commander';
import { isScsError } from '../errors.ts';
import { formatPid, parsePid } from '../psk/pid.ts';
import { parsePps } from '../psk/pps.ts';
import type { Io } from './io.ts';
import { registerPskDbCommands } from './psk-db.ts';
import { registerPskTransferCommands } from './psk-transfer.ts';

export function registerPskCommands(program: Command, io: Io): void {
  const psk = program.command('psk').description('generate, list, hand out and take in PID/PPS pairs');
  registerPskDbCommands(psk, io);
  registerPskTransferCommands(psk, io);

  psk
    .command('check')
    .description('check a PID (and optionally a PPS) for length, alphabet and check characters')
    .argument('<pid>', 'Provisioning ID, XXXX-XXXX or 8 characters')
    .argument('[pps]', 'Provisioning Passphrase, dashed or 32 characters')
    .action((pidInput: string, ppsInput: string | undefined) => {
      let ok = true;
      try {
        io.out(`PID ${formatPid(parsePid(pidInput))}: valid`);
      } catch (e) {
        if (!isScsError(e)) throw e;
        io.out(e.message);
        ok = false;
      }
      if (ppsInput !== undefined) {
        try {
          parsePps(ppsInput);
          io.out('PPS: valid');
        } catch (e) {
          if (!isScsError(e)) throw e;
          io.out(e.message);
          ok = false;
        }
      }
      if (!ok) io.setExitCode(1);
    });
}
