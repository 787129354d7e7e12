import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Io } from './io.ts';
import { buildProgram } from './program.ts';

const HELLO_HEX = '00000200050000000011223344556677' + '8899aabbccddeeff' + Buffer.from('TESTPID1').toString('hex');

function capture(): Io & { outs: string[]; errs: string[]; code: number; waitErr(re: RegExp): Promise<string> } {
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  const io = {
    outs: [] as string[],
    errs: [] as string[],
    code: 0,
    isTty: false,
    out: (line: string) => io.outs.push(line),
    err: (line: string) => {
      io.errs.push(line);
      for (const w of waiters.filter((x) => x.re.test(line))) w.resolve(line);
    },
    setExitCode: (code: number) => (io.code = code),
    waitErr: (re: RegExp) =>
      new Promise<string>((resolve) => {
        const hit = io.errs.find((l) => re.test(l));
        if (hit) resolve(hit);
        else waiters.push({ re, resolve });
      }),
  };
  return io;
}

async function run(io: Io, ...args: string[]): Promise<void> {
  await buildProgram(io).parseAsync(['node', 'amt-scs', ...args]);
}

describe('amt-scs hello decode', () => {
  it('prints a hello given as hex as JSON', async () => {
    const io = capture();
    await run(io, 'hello', 'decode', HELLO_HEX);
    assert.equal(io.code, 0);
    assert.deepEqual(JSON.parse(io.outs.join('\n')), {
      version: 2,
      uuid: '33221100-5544-7766-8899-aabbccddeeff',
      pid: 'TESTPID1',
      retryCount: 5,
      adminCredentialsSet: false,
    });
  });

  it('reads a hello from a file of raw bytes', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'hello-cli-'));
    try {
      const file = path.join(dir, 'hello.bin');
      await writeFile(file, Buffer.from(HELLO_HEX, 'hex'));
      const io = capture();
      await run(io, 'hello', 'decode', file);
      assert.equal((JSON.parse(io.outs.join('\n')) as { pid: string }).pid, 'TESTPID1');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('prints the precise reason and exits 1 for a malformed hello', async () => {
    const io = capture();
    await run(io, 'hello', 'decode', HELLO_HEX + '00');
    assert.equal(io.code, 1);
    assert.deepEqual(io.outs, []);
    assert.match(
      io.errs.join('\n'),
      /SCS_HELLO_MALFORMED: malformed hello: 1 byte\(s\) follow the end of a version 2 hello/,
    );
  });

  it('says when the input is neither a file nor hex', async () => {
    const io = capture();
    await run(io, 'hello', 'decode', 'no-such-file.bin');
    assert.equal(io.code, 1);
    assert.match(io.errs.join('\n'), /neither a readable file nor/);
  });
});

describe('amt-scs hello listen', () => {
  it('prints each hello received as a JSON line and stops after --count', async () => {
    const io = capture();
    const running = run(io, '--hello-host', '127.0.0.1', '--hello-port', '0', 'hello', 'listen', '--count', '1');
    const line = await io.waitErr(/listening for hellos on/);
    const port = Number(/:(\d+)$/.exec(line)?.[1]);
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.end(Buffer.from(HELLO_HEX, 'hex')));
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    await running;
    const printed = JSON.parse(io.outs[0] ?? '{}') as Record<string, unknown>;
    assert.equal(printed.remoteAddress, '127.0.0.1');
    assert.equal(printed.pid, 'TESTPID1');
  });
});
