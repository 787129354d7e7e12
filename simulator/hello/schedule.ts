import { ScsError } from '../../src/errors.ts';

/**
 * The simulator's hello back-off (protocol.md §1d, a project choice): the first hello at once,
 * then 4 more 12 s apart (5 in the first burst), 5 at 2 min, 5 at 20 min, then one every 36 min
 * until the provisioning window (default 6 h for PSK) closes. Everything, the window included,
 * is multiplied by a time factor so tests run in milliseconds (factor 0.001: 12 s -> 12 ms).
 */
export const DEFAULT_PSK_WINDOW_MS = 6 * 60 * 60 * 1000;

const SECOND = 1000;
const MINUTE = 60 * SECOND;

/** Nominal (factor 1) delay before hello number `index` (0-based) after the one before it. */
export function nominalHelloDelayMs(index: number): number {
  if (index <= 0) return 0;
  if (index < 5) return 12 * SECOND;
  if (index < 10) return 2 * MINUTE;
  if (index < 15) return 20 * MINUTE;
  return 36 * MINUTE;
}

/** Nominal offsets from the start of the window of every hello sent in it (offset < window). */
export function nominalHelloOffsetsMs(windowMs: number = DEFAULT_PSK_WINDOW_MS): number[] {
  const out: number[] = [];
  for (let i = 0, at = 0; ; i++) {
    at += nominalHelloDelayMs(i);
    if (at >= windowMs) return out;
    out.push(at);
  }
}

export function checkTimeFactor(factor: number): number {
  if (!Number.isFinite(factor) || factor <= 0 || factor > 1000) {
    throw new ScsError('SCS_SIM_CONFIG_INVALID', `time factor must be a number in (0, 1000], got ${factor}`);
  }
  return factor;
}
