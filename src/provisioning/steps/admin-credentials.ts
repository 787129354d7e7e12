import { setAdminAclEntryEx } from '../../amt/wsman/ops/authorization.ts';
import { ScsError } from '../../errors.ts';
import type { Step } from './step.ts';
import { escrowedPassword } from './escrowed-password.ts';

/**
 * §6 step 2: AMT_AuthorizationService.SetAdminAclEntryEx(Username, DigestPassword). The new
 * password is escrowed first; DigestPassword is base64 of MD5(user:realm:password) with the
 * realm read in step 1.
 */
export const adminCredentialsStep: Step = {
  name: 'admin-credentials',
  async run(ctx) {
    const realm = ctx.facts?.digestRealm;
    if (realm === undefined) throw new ScsError('SCS_JOB_FAILED', 'admin credentials before facts: no Digest realm');
    const username = ctx.profile.adminUser;
    const fixed = ctx.profile.adminPassword === 'fixed' ? ctx.profileSecrets.adminPassword : undefined;
    if (ctx.profile.adminPassword === 'fixed' && fixed === undefined) {
      throw new ScsError(
        'SCS_PROFILE_INVALID',
        `profile "${ctx.profileName}" has adminPassword fixed but no password`,
        {
          details: { field: 'adminPassword', profile: ctx.profileName },
        },
      );
    }
    const { password } = await escrowedPassword(ctx, 'admin', fixed, username);
    await ctx.call(setAdminAclEntryEx({ username, realm, password }));
    ctx.note({ adminUser: username });
  },
};
