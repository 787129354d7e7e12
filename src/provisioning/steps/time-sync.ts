import {
  epochSeconds,
  getLowAccuracyTimeSynch,
  setHighAccuracyTimeSynch,
} from '../../amt/wsman/ops/time-synchronization.ts';
import type { Step } from './step.ts';

/**
 * §6 step 4: GetLowAccuracyTimeSynch -> Ta0, then SetHighAccuracyTimeSynch(Ta0, Tm1, Tm2) with
 * Tm1 = our clock when Ta0 arrived and Tm2 = our clock right before the set.
 */
export const timeSyncStep: Step = {
  name: 'time-sync',
  async run(ctx) {
    const { ta0 } = await ctx.call(getLowAccuracyTimeSynch());
    const tm1 = epochSeconds();
    await ctx.call(setHighAccuracyTimeSynch({ ta0, tm1, tm2: epochSeconds() }));
  },
};
