import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { isScsError, ScsError } from '../errors.ts';
import { decodeHello, type Hello } from '../hello/decode.ts';
import { createHelloListener } from '../hello/listener.ts';
import { configFrom } from './context.ts';
import type { Io } from './io.ts';

/** The JSON shape printed for a hello: fields in the order people read them. */
export function helloJson(hello: Hello): Record<string, unknown> {
  return hello.version === 2
    ? {
        version: 2,
        uuid: hello.uuid,
        pid: hello.pid,
        retryCount: hello.retryCount,
        adminCredentialsSet: hello.adminCredentialsSet,
      }
    : {
        version: 3,
        uuid: hello.uuid,
        retryCount: hello.retryCount,
        adminCredentialsSet: hello.adminCredentialsSet,
        hashes: hello.hashes,
      };
}

const HEX_INPUT = /^(0x)?[0-9a-f\s:]+$/i;

/** An existing file is read as raw bytes; anything else must be hex (spaces and colons ignored). */
function readInput(input: string): Buffer {
  let isFile = false;
  try {
    isFile = statSync(input).isFile();
  } catch {
    isFile = false;
  }
  if (isFile) {
    try {
      return readFileSync(input);
    } catch (cause) {
      throw new ScsError('SCS_FILE_IO', `cannot read ${input}`, { cause });
    }
  }
  const hex = input.replace(/^0x/i, '').replace(/[\s:]/g, '');
  if (!HEX_INPUT.test(input) || hex.length % 2 !== 0) {
    throw new ScsError('SCS_FILE_IO', `"${input}" is neither a readable file nor an even number of hex digits`);
  }
  return Buffer.from(hex, 'hex');
}

export function registerHelloCommands(program: Command, io: Io): void {
  const hello = program.command('hello').description('decode device hellos (protocol.md §1) and watch the hello port');

  hello
    .command('decode')
    .description('decode one hello message and print it as JSON; a malformed one prints the reason (exit 1)')
    .argument('<input>', 'hex bytes of the message, or a file holding the raw message')
    .action((input: string) => {
      try {
        io.out(JSON.stringify(helloJson(decodeHello(readInput(input))), null, 2));
      } catch (e) {
        if (!isScsError(e)) throw e;
        io.err(`error ${e.code}: ${e.message}`);
        io.setExitCode(1);
      }
    });

  hello
    .command('listen')
    .description('listen on the hello port and print each hello as a JSON line (no lookups, no provisioning)')
    .option('--count <n>', 'stop after this many hellos')
    .action(async (opts: { count?: string }, command: Command) => {
      const config = configFrom(command);
      const limit = opts.count === undefined ? Infinity : Number(opts.count);
      if (!(limit > 0))
        throw new ScsError('SCS_CONFIG_INVALID', `--count must be a positive number, got ${opts.count}`);
      let seen = 0;
      let stop: () => void = () => undefined;
      const stopped = new Promise<void>((resolve) => (stop = resolve));
      const listener = createHelloListener({
        host: config.helloHost,
        port: config.helloPort,
        maxConnections: config.helloMaxConnections,
        backlog: config.helloBacklog,
        timeoutMs: config.helloTimeoutMs,
        onHello: (h, remoteAddress) => {
          io.out(JSON.stringify({ remoteAddress, ...helloJson(h) }));
          if (++seen >= limit) stop();
        },
        onMalformed: (m, remoteAddress) => io.err(`malformed hello from ${remoteAddress}: ${m.message}`),
      });
      const address = await listener.listen();
      io.err(`listening for hellos on ${address.address}:${address.port}`);
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await stopped;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      await listener.close();
    });
}
