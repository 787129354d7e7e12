import type { AmtModel } from '../../device/model.ts';
import { PtStatus } from '../../device/pt-status.ts';
import { uuidToBytes } from '../../hello/uuid.ts';
import { resourceUriOf } from '../namespaces.ts';
import { serviceKeys, serviceProperties, type ResourceClass } from '../resource.ts';

const NAME = 'Intel(r) AMT Setup and Configuration Service';

/**
 * AMT_SetupAndConfigurationService: the provisioning state and the methods that move it
 * (protocol.md §6, §7). CommitChanges, Unprovision and PartialUnprovision end the session: AMT
 * restarts its network stack after them, so the reply goes out with `Connection: close`.
 */
export function setupAndConfigurationService(model: AmtModel): ResourceClass {
  const className = 'AMT_SetupAndConfigurationService';
  return {
    className,
    resourceUri: resourceUriOf(className),
    instances: () => [
      {
        keys: serviceKeys(className, NAME),
        properties: serviceProperties(className, NAME, [
          ['PasswordModel', 1],
          ['ProvisioningMode', model.mode],
          ['ProvisioningState', model.state],
          ['ZeroTouchConfigurationEnabled', true],
        ]),
      },
    ],
    methods: {
      CommitChanges: () => ({ returnValue: model.commitChanges(), closeSession: true }),
      Unprovision: (input) => {
        const mode = input.uint('ProvisioningMode');
        if (mode === undefined) return { returnValue: PtStatus.INVALID_PARAMETER };
        return { returnValue: model.unprovision(mode), closeSession: true };
      },
      PartialUnprovision: () => ({ returnValue: model.partialUnprovision(), closeSession: true }),
      SetMEBxPassword: (input) => {
        const pw = input.text('Password');
        return { returnValue: pw === undefined ? PtStatus.INVALID_PARAMETER : model.setMebxPassword(pw) };
      },
      SetTLSPSK: (input) => {
        const pid = input.text('PID');
        const pps = input.text('PPS');
        if (pid === undefined || pps === undefined) return { returnValue: PtStatus.INVALID_PARAMETER };
        return { returnValue: model.setTlsPsk(pid, pps) };
      },
      // The 16 UUID bytes in SMBIOS order (as in the hello, protocol.md §1c), base64.
      GetUuid: () => ({ returnValue: 0, output: [['UUID', uuidToBytes(model.uuid).toString('base64')]] }),
      ExtendProvisioningPeriod: (input) => {
        const hours = input.uint('Duration');
        return {
          returnValue: hours === undefined ? PtStatus.INVALID_PARAMETER : model.extendProvisioningPeriod(hours),
        };
      },
    },
  };
}
