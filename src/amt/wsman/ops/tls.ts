import { ACTION, elementXml, resourceUri, type EndpointReference } from '../envelope.ts';
import {
  getCall,
  putBody,
  readInstance,
  single,
  stringProperty,
  type Instance,
  type SingleOperation,
} from '../operation.ts';
import { child, isObject, malformedReply, parseEpr } from '../parse.ts';
import { instanceReference, PUBLIC_KEY_CERTIFICATE } from './public-key.ts';

/** AMT TLS configuration (protocol.md §6 step 6): credential context, then TLS setting data. */
export const TLS_CREDENTIAL_CONTEXT = 'AMT_TLSCredentialContext';
export const TLS_SETTING_DATA = 'AMT_TLSSettingData';
export const TLS_PROTOCOL_ENDPOINT_COLLECTION = 'AMT_TLSProtocolEndpointCollection';
/** The remote (network) interface's TLS settings; `Intel(r) AMT LMS TLS Settings` is the local one. */
export const TLS_SETTINGS_802_3 = 'Intel(r) AMT 802.3 TLS Settings';

/**
 * Create AMT_TLSCredentialContext binding the certificate (ElementInContext) to the TLS
 * endpoint collection (ElementProvidingContext), as Intel's stack does. Resolves to the
 * ResourceCreated reference when the device returns one.
 */
export function createTlsCredentialContext(
  certificateInstanceId: string,
): SingleOperation<EndpointReference | undefined> {
  const uri = resourceUri(TLS_CREDENTIAL_CONTEXT);
  const collection: EndpointReference = {
    address: '/wsman',
    resourceUri: resourceUri(TLS_PROTOCOL_ENDPOINT_COLLECTION),
    selectors: [{ name: 'ElementName', value: 'TLSProtocolEndpointInstances Collection' }],
  };
  const body = elementXml(TLS_CREDENTIAL_CONTEXT, uri, [
    ['ElementInContext', instanceReference(PUBLIC_KEY_CERTIFICATE, certificateInstanceId)],
    ['ElementProvidingContext', collection],
  ]);
  return single(
    `${TLS_CREDENTIAL_CONTEXT}.Create`,
    { kind: 'call', action: ACTION.create, resourceUri: uri, body, idempotent: false },
    (reply) => {
      const createdNode = child(reply.body, 'ResourceCreated');
      return isObject(createdNode) ? parseEpr(createdNode, 'ResourceCreated') : undefined;
    },
  );
}

export interface TlsSettingData {
  readonly instance: Instance;
  readonly instanceId: string;
  readonly enabled: boolean;
  readonly acceptNonSecureConnections: boolean | undefined;
  readonly mutualAuthentication: boolean | undefined;
}

const bool = (v: string | undefined): boolean | undefined => (v === undefined ? undefined : v.toLowerCase() === 'true');

function toTlsSettingData(instance: Instance): TlsSettingData {
  const instanceId = stringProperty(instance, 'InstanceID');
  if (instanceId === undefined) throw malformedReply(`${TLS_SETTING_DATA} has no InstanceID`);
  return {
    instance,
    instanceId,
    enabled: bool(stringProperty(instance, 'Enabled')) ?? false,
    acceptNonSecureConnections: bool(stringProperty(instance, 'AcceptNonSecureConnections')),
    mutualAuthentication: bool(stringProperty(instance, 'MutualAuthentication')),
  };
}

/** Get AMT_TLSSettingData by InstanceID. */
export function getTlsSettingData(instanceId: string = TLS_SETTINGS_802_3): SingleOperation<TlsSettingData> {
  return single(
    `${TLS_SETTING_DATA}.Get`,
    getCall(TLS_SETTING_DATA, [{ name: 'InstanceID', value: instanceId }]),
    (reply) => toTlsSettingData(readInstance(reply.body, TLS_SETTING_DATA)),
  );
}

export interface TlsSettingChanges {
  readonly enabled?: boolean;
  readonly acceptNonSecureConnections?: boolean;
  readonly mutualAuthentication?: boolean;
}

/** Put AMT_TLSSettingData: the instance as read with Enabled etc. changed; takes effect at commit. */
export function putTlsSettingData(
  current: Instance,
  changes: TlsSettingChanges,
): SingleOperation<TlsSettingData | undefined> {
  const instanceId = stringProperty(current, 'InstanceID');
  if (instanceId === undefined) throw malformedReply(`${TLS_SETTING_DATA} has no InstanceID`);
  const fields: Record<string, boolean> = {};
  if (changes.enabled !== undefined) fields.Enabled = changes.enabled;
  if (changes.acceptNonSecureConnections !== undefined)
    fields.AcceptNonSecureConnections = changes.acceptNonSecureConnections;
  if (changes.mutualAuthentication !== undefined) fields.MutualAuthentication = changes.mutualAuthentication;
  return single(
    `${TLS_SETTING_DATA}.Put`,
    {
      kind: 'call',
      action: ACTION.put,
      resourceUri: resourceUri(TLS_SETTING_DATA),
      selectors: [{ name: 'InstanceID', value: instanceId }],
      body: putBody(current, fields),
      idempotent: false,
    },
    (reply) =>
      child(reply.body, TLS_SETTING_DATA) === undefined
        ? undefined
        : toTlsSettingData(readInstance(reply.body, TLS_SETTING_DATA)),
  );
}
