import type { AmtModel } from '../../device/model.ts';
import { amtMajor } from '../../device/setup.ts';
import type { ResourceClass } from '../resource.ts';
import { generalSettings } from './general-settings.ts';
import { hostBasedSetupService } from './host-based-setup.ts';
import { publicKeyCertificate, publicKeyManagementService, publicPrivateKeyPair } from './public-key.ts';
import { authorizationService, softwareIdentity, timeSynchronizationService } from './services.ts';
import { setupAndConfigurationService } from './setup-and-configuration.ts';
import { tlsCredentialContext, tlsSettingData } from './tls.ts';

/** Every class the simulated device answers for; any other ResourceURI is wsa:DestinationUnreachable. */
export function amtClasses(model: AmtModel): ResourceClass[] {
  return [
    generalSettings(model),
    setupAndConfigurationService(model),
    softwareIdentity(model),
    authorizationService(model),
    timeSynchronizationService(model),
    publicKeyManagementService(model),
    publicPrivateKeyPair(model),
    publicKeyCertificate(model),
    tlsCredentialContext(model),
    tlsSettingData(model),
    // AMT 7 and later only: a 6.x device answers it wsa:DestinationUnreachable, as real firmware does.
    ...(amtMajor(model.amtVersion) >= 7 ? [hostBasedSetupService(model)] : []),
  ];
}
