import type { AmtModel } from '../../device/model.ts';
import { PtStatus } from '../../device/pt-status.ts';
import { resourceUriOf } from '../namespaces.ts';
import { serviceKeys, serviceProperties, type Instance, type ResourceClass } from '../resource.ts';

/** AMT_AuthorizationService: the admin ACL entry (protocol.md §6 step 2). */
export function authorizationService(model: AmtModel): ResourceClass {
  const className = 'AMT_AuthorizationService';
  const name = 'Intel(r) AMT Authorization Service';
  return {
    className,
    resourceUri: resourceUriOf(className),
    instances: () => [
      {
        keys: serviceKeys(className, name),
        properties: serviceProperties(className, name, [['AllowHttpQopAuthOnly', 1]]),
      },
    ],
    methods: {
      SetAdminAclEntryEx: (input) => {
        const username = input.text('Username');
        const digest = input.text('DigestPassword');
        if (username === undefined || digest === undefined) return { returnValue: PtStatus.INVALID_PARAMETER };
        return { returnValue: model.setAdminAclEntryEx(username, digest) };
      },
      GetAdminAclEntry: () => ({
        returnValue: 0,
        output: [['Username', model.working.admin?.username ?? 'admin']],
      }),
    },
  };
}

/** AMT_TimeSynchronizationService (protocol.md §6 step 4). Times are seconds since the epoch. */
export function timeSynchronizationService(model: AmtModel): ResourceClass {
  const className = 'AMT_TimeSynchronizationService';
  const name = 'Intel(r) AMT Time Synchronization Service';
  return {
    className,
    resourceUri: resourceUriOf(className),
    instances: () => [
      {
        keys: serviceKeys(className, name),
        properties: serviceProperties(className, name, [['LocalTimeSyncEnabled', 0]]),
      },
    ],
    methods: {
      GetLowAccuracyTimeSynch: () => ({ returnValue: 0, output: [['Ta0', model.getLowAccuracyTimeSynch()]] }),
      SetHighAccuracyTimeSynch: (input) => {
        const ta0 = input.uint('Ta0');
        const tm1 = input.uint('Tm1');
        const tm2 = input.uint('Tm2');
        if (ta0 === undefined || tm1 === undefined || tm2 === undefined)
          return { returnValue: PtStatus.INVALID_PARAMETER };
        return { returnValue: model.setHighAccuracyTimeSynch(ta0, tm1, tm2) };
      },
    },
  };
}

/**
 * CIM_SoftwareIdentity: the firmware facts, one instance per InstanceID as AMT lists them; the
 * instance `AMT` carries the AMT version (protocol.md §6 step 1).
 */
export function softwareIdentity(model: AmtModel): ResourceClass {
  const className = 'CIM_SoftwareIdentity';
  const v = model.amtVersion;
  const rows: Array<[string, string]> = [
    ['Flash', v],
    ['Netstack', v],
    ['AMTApps', v],
    ['AMT', v],
    ['Sku', model.sku],
    ['VendorID', '8086'],
    ['Build Number', model.buildNumber],
    ['Recovery Version', v],
    ['Recovery Build Num', model.buildNumber],
    ['Legacy Mode', 'False'],
    ['AMT FW Core Version', v],
  ];
  const instances = (): Instance[] =>
    rows.map(([id, version]) => ({
      keys: { InstanceID: id },
      properties: [
        ['InstanceID', id],
        ['IsEntity', true],
        ['VersionString', version],
      ],
    }));
  return { className, resourceUri: resourceUriOf(className), instances };
}
