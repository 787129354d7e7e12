import { setMEBxPassword } from '../../amt/wsman/ops/setup-and-configuration.ts';
import { ScsError } from '../../errors.ts';
import type { Step } from './step.ts';
import { escrowedPassword } from './escrowed-password.ts';

/** §6 step 3 (optional): SetMEBxPassword(Password), escrowed first; the device answers 2054 to a weak one. */
export const mebxPasswordStep: Step = {
  name: 'mebx-password',
  async run(ctx) {
    const fixed = ctx.profile.mebxPassword === 'fixed' ? ctx.profileSecrets.newMebxPassword : undefined;
    if (ctx.profile.mebxPassword === 'fixed' && fixed === undefined) {
      throw new ScsError('SCS_PROFILE_INVALID', `profile "${ctx.profileName}" has mebxPassword fixed but no password`, {
        details: { field: 'newMebxPassword', profile: ctx.profileName },
      });
    }
    const { password } = await escrowedPassword(ctx, 'mebx', fixed);
    await ctx.call(setMEBxPassword(password));
  },
};
