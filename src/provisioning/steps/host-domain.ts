import { putGeneralSettings } from '../../amt/wsman/ops/general-settings.ts';
import { ScsError } from '../../errors.ts';
import { renderHostName } from '../../store/provisioning/profile.ts';
import type { Step } from './step.ts';

/**
 * §6 step 5: Put AMT_GeneralSettings with HostName from the profile pattern and DomainName from
 * the profile (or the device's own when the profile has none).
 */
export const hostDomainStep: Step = {
  name: 'host-domain',
  async run(ctx) {
    const facts = ctx.facts;
    if (facts === undefined) throw new ScsError('SCS_JOB_FAILED', 'host/domain before facts');
    const hostName = renderHostName(ctx.profile.hostNamePattern, { uuid: ctx.uuid, hostName: facts.hostName });
    const domainName = ctx.profile.domainName === '' ? facts.domainName : ctx.profile.domainName;
    await ctx.call(putGeneralSettings(facts.generalSettings, { hostName, domainName }));
    ctx.note({ hostName, domainName });
  },
};
