import { Command } from 'commander';
import { registerAuditCommands } from './audit.ts';
import { registerBackupCommands } from './backup.ts';
import { addConfigOptions } from './context.ts';
import { registerDbCommands } from './db.ts';
import { registerDemoCommands } from './demo.ts';
import { registerDeviceCommands } from './device.ts';
import { registerDeviceOpsCommands } from './device-ops.ts';
import { registerHelloCommands } from './hello.ts';
import type { Io } from './io.ts';
import { registerJobCommands } from './job.ts';
import { registerPkiCommands } from './pki.ts';
import { registerKeyCommands } from './key.ts';
import { registerProfileCommands } from './profile.ts';
import { registerPskCommands } from './psk.ts';
import { registerServeCommands } from './serve.ts';
import { registerSimCommands } from './sim.ts';
import { registerTokenCommands } from './token.ts';

/** The whole CLI; main.ts runs it, tests build it with their own Io. */
export function buildProgram(io: Io): Command {
  const program = new Command('amt-scs')
    .description('Intel AMT Setup and Configuration Server (PSK / PID-PPS provisioning)')
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });
  addConfigOptions(program);
  registerPskCommands(program, io);
  registerAuditCommands(program, io);
  registerHelloCommands(program, io);
  registerSimCommands(program, io);
  registerTokenCommands(program, io);
  registerServeCommands(program, io);
  registerProfileCommands(program, io);
  registerDeviceCommands(program, io);
  registerDeviceOpsCommands(program, io);
  registerJobCommands(program, io);
  registerDemoCommands(program, io);
  registerPkiCommands(program, io);
  registerKeyCommands(program, io);
  registerBackupCommands(program, io);
  registerDbCommands(program, io);
  return program;
}
