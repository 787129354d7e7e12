import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAmtError } from '../amt/wsman/fault.ts';
import { isScsError, type ErrorCode } from '../errors.ts';

/**
 * Which failures are worth another try of the same step (docs/provisioning.md, "Errors and
 * retries"): a lost or slow connection, a device busy restarting, PT_STATUS 1 INTERNAL_ERROR and
 * 2 NOT_READY. A wrong key, refused credentials, a reply that is not WS-Management or any other
 * ReturnValue will not change by asking again.
 */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'SCS_AMT_CONNECTION_LOST',
  'SCS_AMT_TIMEOUT',
  'SCS_TLS_TIMEOUT',
  'SCS_TLS_REFUSED',
  'SCS_TLS_FAILED',
]);

export function isRetryable(error: unknown): boolean {
  if (isAmtError(error)) return error.returnValue === 1 || error.returnValue === 2;
  if (isScsError(error, 'SCS_WSMAN_FAULT')) return /InternalError/i.test(String(error.details.subcode ?? ''));
  if (isScsError(error, 'SCS_AMT_HTTP')) {
    const status = error.details.status;
    return typeof status === 'number' && status >= 500 && status !== 501;
  }
  return isScsError(error) && RETRYABLE.has(error.code);
}

/** Exponential back-off with full jitter (node:crypto), capped. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.max(1, randomInt(Math.max(2, Math.floor(ceiling) + 1)));
}

export interface RetryOptions {
  /** Further tries after the first (config stepRetries). */
  readonly retries: number;
  readonly baseMs: number;
  readonly maxMs: number;
  readonly signal: AbortSignal;
  readonly retryable?: (error: unknown) => boolean;
  readonly onRetry?: (error: unknown, attempt: number, waitMs: number) => void;
}

/** Runs `fn` until it resolves, a failure is not retryable, or the retries are spent. */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const retryable = options.retryable ?? isRetryable;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (options.signal.aborted || attempt >= options.retries || !retryable(error)) throw error;
      const wait = backoffMs(attempt, options.baseMs, options.maxMs);
      options.onRetry?.(error, attempt + 1, wait);
      await sleep(wait, undefined, { signal: options.signal });
    }
  }
}
