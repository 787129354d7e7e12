import { commitChanges } from '../../amt/wsman/ops/setup-and-configuration.ts';
import { isAmtError } from '../../amt/wsman/fault.ts';
import type { Step } from './step.ts';

/**
 * §6 step 8: CommitChanges. "Commit sent" is written first: after it, a crash or a lost reply
 * means the device may be Post already, and the job resumes by verifying, never by sending
 * the commit again (a second CommitChanges to a device that lost its pending settings would
 * commit nothing). A non-zero ReturnValue means nothing was committed.
 */
export const commitStep: Step = {
  name: 'commit',
  async run(ctx) {
    await ctx.persist({ commitSent: true }, { action: 'job.commit_sent' });
    try {
      await ctx.call(commitChanges());
    } catch (error) {
      if (isAmtError(error)) await ctx.persist({ commitSent: false });
      throw error;
    }
    // The device restarts its network stack after a commit (§6 step 8); the session is gone.
    ctx.closeSession();
  },
};
