import { getGeneralSettings, type GeneralSettings } from '../../amt/wsman/ops/general-settings.ts';
import { getSetupAndConfigurationService, ProvisioningState } from '../../amt/wsman/ops/setup-and-configuration.ts';
import { enumerateSoftwareIdentity } from '../../amt/wsman/ops/software-identity.ts';
import { isScsError, ScsError } from '../../errors.ts';
import type { JobContext } from '../context.ts';
import type { Step } from './step.ts';

/**
 * §6 step 1: Get AMT_GeneralSettings (DigestRealm, HostName, DomainName), Get
 * AMT_SetupAndConfigurationService (ProvisioningState must be 1, In) and Enumerate
 * CIM_SoftwareIdentity (the AMT version). The first call also settles which credentials the
 * device accepts: the candidates are tried in order, a refused one costs one 401.
 */
export const factsStep: Step = {
  name: 'facts',
  async run(ctx) {
    const settings = await authenticate(ctx);
    const setup = await ctx.call(getSetupAndConfigurationService());
    if (setup.provisioningState !== ProvisioningState.In) {
      throw new ScsError(
        'SCS_DEVICE_STATE_INVALID',
        `device ${ctx.uuid} is in ProvisioningState ${setup.provisioningState}, expected 1 (In)`,
        { details: { expected: ProvisioningState.In, actual: setup.provisioningState } },
      );
    }
    const software = await ctx.call(enumerateSoftwareIdentity());
    ctx.facts = {
      digestRealm: settings.digestRealm,
      hostName: settings.hostName,
      domainName: settings.domainName,
      generalSettings: settings.instance,
      provisioningState: setup.provisioningState,
      amtVersion: software.amtVersion,
    };
    if (software.amtVersion !== undefined) ctx.note({ amtVersion: software.amtVersion });
  },
};

async function authenticate(ctx: JobContext): Promise<GeneralSettings> {
  if (ctx.candidates.length === 0) {
    throw new ScsError(
      'SCS_PROFILE_INVALID',
      `profile "${ctx.profileName}" has no currentMebxPassword: the server cannot log in to a device in setup mode`,
      { details: { field: 'currentMebxPassword', profile: ctx.profileName } },
    );
  }
  let refused: unknown;
  for (const candidate of ctx.candidates) {
    ctx.credentials = candidate;
    try {
      return await ctx.call(getGeneralSettings());
    } catch (error) {
      if (!isScsError(error, 'SCS_AMT_AUTH_FAILED')) throw error;
      ctx.log.info({ source: candidate.source }, 'device refused these credentials; trying the next');
      refused = error;
      ctx.closeSession();
    }
  }
  ctx.credentials = undefined;
  throw new ScsError(
    'SCS_AMT_AUTH_FAILED',
    `device ${ctx.uuid} refused all ${ctx.candidates.length} candidate credentials (${ctx.candidates.map((c) => c.source).join(', ')})`,
    { cause: refused, details: { candidates: ctx.candidates.length } },
  );
}
