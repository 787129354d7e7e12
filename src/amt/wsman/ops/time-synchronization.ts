import { methodCall, methodOutput, single, voidMethod, type SingleOperation } from '../operation.ts';
import { requireText, toInt } from '../parse.ts';

/** AMT_TimeSynchronizationService (protocol.md §6 step 4); times are seconds since the epoch. */
export const TIME_SYNCHRONIZATION_SERVICE = 'AMT_TimeSynchronizationService';

/** GetLowAccuracyTimeSynch() -> Ta0, the device clock. */
export function getLowAccuracyTimeSynch(): SingleOperation<{ readonly ta0: number }> {
  const request = methodCall(TIME_SYNCHRONIZATION_SERVICE, 'GetLowAccuracyTimeSynch');
  return single(`${TIME_SYNCHRONIZATION_SERVICE}.GetLowAccuracyTimeSynch`, request, (reply) => {
    const output = methodOutput(reply, request, 'GetLowAccuracyTimeSynch');
    return { ta0: toInt(requireText(output, 'Ta0', 'GetLowAccuracyTimeSynch_OUTPUT'), 'Ta0') };
  });
}

export interface HighAccuracyTime {
  /** Ta0 as GetLowAccuracyTimeSynch returned it. */
  readonly ta0: number;
  /** Our clock when that reply arrived. */
  readonly tm1: number;
  /** Our clock right before this call. */
  readonly tm2: number;
}

/** SetHighAccuracyTimeSynch(Ta0, Tm1, Tm2); 34 INVALID_TIME when they do not add up. */
export function setHighAccuracyTimeSynch(t: HighAccuracyTime): SingleOperation<number> {
  return voidMethod(TIME_SYNCHRONIZATION_SERVICE, 'SetHighAccuracyTimeSynch', [
    ['Ta0', t.ta0],
    ['Tm1', t.tm1],
    ['Tm2', t.tm2],
  ]);
}

/** Seconds since the epoch, as the time calls count them. */
export function epochSeconds(date: Date = new Date()): number {
  return Math.floor(date.getTime() / 1000);
}
