import { ScsError } from '../errors.ts';

/** Batch names appear in file names and CLI output: keep them to a safe, shell-friendly set. */
const BATCH_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

export function checkBatchName(name: string): string {
  if (!BATCH_NAME.test(name)) {
    throw new ScsError(
      'SCS_ARGUMENT_INVALID',
      `batch name "${name}" is invalid: 1-64 characters of A-Z a-z 0-9 . _ : -, starting with a letter or digit`,
    );
  }
  return name;
}

/** `gen-20250131-142501`: the batch a generate run lands in when none is named (UTC). */
export function defaultBatchName(prefix: string, at: Date = new Date()): string {
  const iso = at.toISOString();
  return `${prefix}-${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}`;
}
