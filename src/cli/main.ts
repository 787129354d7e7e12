#!/usr/bin/env -S node --max-semi-space-size=32
import { isScsError } from '../errors.ts';
import { processIo } from './io.ts';
import { buildProgram } from './program.ts';

try {
  await buildProgram(processIo).parseAsync(process.argv);
} catch (e) {
  // Expected failures print their code and message only; anything else is a bug worth a stack.
  if (isScsError(e)) processIo.err(`error ${e.code}: ${e.message}`);
  else processIo.err(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = isScsError(e) ? 1 : 70;
}
