import {
  getCall,
  putBody,
  readInstance,
  single,
  stringProperty,
  type Instance,
  type SingleOperation,
} from '../operation.ts';
import { ACTION, resourceUri } from '../envelope.ts';
import { child, malformedReply } from '../parse.ts';

/** AMT_GeneralSettings (protocol.md §6 steps 1 and 5). */
export const GENERAL_SETTINGS = 'AMT_GeneralSettings';
export const GENERAL_SETTINGS_INSTANCE_ID = 'Intel(r) AMT: General Settings';

export interface GeneralSettings {
  /** The instance as read, for a later Put (a Put sends the whole instance back). */
  readonly instance: Instance;
  /** `Digest:` + 32 hex digits; the realm of HTTP Digest and of DigestPassword (§4, §6). */
  readonly digestRealm: string;
  readonly hostName: string;
  readonly domainName: string;
}

function toGeneralSettings(instance: Instance): GeneralSettings {
  const digestRealm = stringProperty(instance, 'DigestRealm');
  if (digestRealm === undefined) throw malformedReply('AMT_GeneralSettings has no DigestRealm');
  return {
    instance,
    digestRealm,
    hostName: stringProperty(instance, 'HostName') ?? '',
    domainName: stringProperty(instance, 'DomainName') ?? '',
  };
}

/** Get AMT_GeneralSettings: DigestRealm, HostName, DomainName (§6 step 1). */
export function getGeneralSettings(): SingleOperation<GeneralSettings> {
  return single(`${GENERAL_SETTINGS}.Get`, getCall(GENERAL_SETTINGS), (reply) =>
    toGeneralSettings(readInstance(reply.body, GENERAL_SETTINGS)),
  );
}

export interface GeneralSettingsChanges {
  readonly hostName?: string;
  readonly domainName?: string;
}

/**
 * Put AMT_GeneralSettings with a new HostName/DomainName (§6 step 5): the full instance as
 * read, modified, addressed by its InstanceID selector. Resolves to the instance the device
 * echoes back, or undefined when the PutResponse body is empty.
 */
export function putGeneralSettings(
  current: Instance,
  changes: GeneralSettingsChanges,
): SingleOperation<GeneralSettings | undefined> {
  const fields: Record<string, string> = {};
  if (changes.hostName !== undefined) fields.HostName = changes.hostName;
  if (changes.domainName !== undefined) fields.DomainName = changes.domainName;
  const instanceId = stringProperty(current, 'InstanceID') ?? GENERAL_SETTINGS_INSTANCE_ID;
  return single(
    `${GENERAL_SETTINGS}.Put`,
    {
      kind: 'call',
      action: ACTION.put,
      resourceUri: resourceUri(GENERAL_SETTINGS),
      selectors: [{ name: 'InstanceID', value: instanceId }],
      body: putBody(current, fields),
      idempotent: false,
    },
    (reply) =>
      child(reply.body, GENERAL_SETTINGS) === undefined
        ? undefined
        : toGeneralSettings(readInstance(reply.body, GENERAL_SETTINGS)),
  );
}
