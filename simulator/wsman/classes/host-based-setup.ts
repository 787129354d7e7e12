import type { AmtModel } from '../../device/model.ts';
import { PtStatus } from '../../device/pt-status.ts';
import { parseBoolean, serviceKeys, serviceProperties, type ResourceClass } from '../resource.ts';
import { resourceUriOf } from '../namespaces.ts';

/** Strict base64 (line breaks allowed), else undefined. */
function base64(text: string | undefined): Buffer | undefined {
  if (text === undefined) return undefined;
  const t = text.replace(/\s+/g, '');
  if (t === '' || t.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(t)) return undefined;
  return Buffer.from(t, 'base64');
}

/**
 * IPS_HostBasedSetupService (AMT 7+; protocol.md §6 "Related"): certificate-based setup into
 * admin control mode. Get shows CurrentControlMode, AllowedControlModes, CertChainStatus and
 * the ConfigurationNonce the AdminSetup signature must cover. AdminSetup ends the session, as
 * CommitChanges does (AMT restarts its network stack in the new mode).
 */
export function hostBasedSetupService(model: AmtModel): ResourceClass {
  const className = 'IPS_HostBasedSetupService';
  const name = 'Intel(r) AMT Host Based Setup Service';
  return {
    className,
    resourceUri: resourceUriOf(className),
    instances: () => [
      {
        keys: serviceKeys(className, name),
        properties: serviceProperties(className, name, [
          ['AllowedControlModes', [1, 2]],
          // 0 none added, 1 chain in progress, 2 chain complete (checked at the root)
          ['CertChainStatus', model.pkiChainLeaf?.ok === true ? 2 : model.pkiChain.length > 0 ? 1 : 0],
          ['ConfigurationNonce', model.configurationNonce.toString('base64')],
          ['CurrentControlMode', model.controlMode],
        ]),
      },
    ],
    methods: {
      AddNextCertInChain: (input) => {
        const der = base64(input.text('NextCertificate'));
        const isLeaf = parseBoolean(input.text('IsLeafCertificate'), 'IsLeafCertificate');
        const isRoot = parseBoolean(input.text('IsRootCertificate'), 'IsRootCertificate');
        if (der === undefined || isLeaf === undefined || isRoot === undefined)
          return { returnValue: PtStatus.INVALID_PARAMETER };
        return { returnValue: model.addNextCertInChain(der, isLeaf, isRoot) };
      },
      AdminSetup: (input) => {
        const encryption = input.uint('NetAdminPassEncryptionType');
        const password = input.text('NetworkAdminPassword');
        const mcNonce = base64(input.text('McNonce'));
        const algorithm = input.uint('SigningAlgorithm');
        const signature = base64(input.text('DigitalSignature'));
        if (
          encryption === undefined ||
          password === undefined ||
          mcNonce === undefined ||
          algorithm === undefined ||
          signature === undefined
        )
          return { returnValue: PtStatus.INVALID_PARAMETER };
        const returnValue = model.adminSetup(encryption, password, mcNonce, algorithm, signature);
        return { returnValue, closeSession: returnValue === PtStatus.SUCCESS };
      },
    },
  };
}
