import { TLS_INSTANCE_IDS, type AmtModel, type TlsInstance } from '../../device/model.ts';
import { WsmanFault } from '../fault.ts';
import { ANONYMOUS, resourceUriOf } from '../namespaces.ts';
import { readEpr, type Epr, type Selector } from '../request.ts';
import { instanceBody, parseBoolean, type Instance, type ResourceClass } from '../resource.ts';
import { child, childrenNamed } from '../xml.ts';
import { certRef } from './public-key.ts';

const ENDPOINT_COLLECTION: Epr = {
  address: ANONYMOUS,
  resourceUri: resourceUriOf('AMT_TLSProtocolEndpointCollection'),
  selectors: [{ name: 'ElementName', value: 'TLSProtocolEndpoint Instances Collection' }],
};

/**
 * AMT_TLSCredentialContext: ties the certificate TLS serves to the TLS endpoints. One may exist;
 * Create while one exists is wsman:AlreadyExists. Pending until CommitChanges, like the rest of
 * the TLS setup (protocol.md §6 step 6).
 */
export function tlsCredentialContext(model: AmtModel): ResourceClass {
  const className = 'AMT_TLSCredentialContext';
  const resourceUri = resourceUriOf(className);
  const store = model.keystore;
  const instances = (): Instance[] => {
    const handle = model.working.tlsContextCert;
    const cert = handle === undefined ? undefined : store.certs.get(handle);
    if (cert === undefined) return [];
    const inContext = certRef(cert);
    return [
      {
        keys: {},
        properties: [
          ['ElementInContext', inContext],
          ['ElementProvidingContext', ENDPOINT_COLLECTION],
        ],
        matches: (selectors: readonly Selector[]) => {
          const sel = selectors.find((s) => s.name === 'ElementInContext');
          return sel?.epr?.selectors.some((s) => s.name === 'InstanceID' && s.value === cert.instanceId) === true;
        },
      },
    ];
  };
  return {
    className,
    resourceUri,
    instances,
    create(body) {
      const data = instanceBody(body, className);
      const inContext = child(data, 'ElementInContext');
      const epr = inContext === undefined ? undefined : readEpr(inContext);
      const id = epr?.selectors.find((s) => s.name === 'InstanceID')?.value;
      if (id === undefined)
        throw new WsmanFault('SchemaValidationError', 'ElementInContext must reference a certificate.');
      const cert = store.certByInstanceId(id);
      if (cert === undefined || cert.keyHandle === undefined || !store.keys.has(cert.keyHandle)) {
        throw new WsmanFault('InvalidParameter', 'ElementInContext must name a certificate of a device key.');
      }
      if (model.working.tlsContextCert !== undefined) throw new WsmanFault('AlreadyExists');
      model.working.tlsContextCert = cert.handle;
      return {
        address: ANONYMOUS,
        resourceUri,
        selectors: [
          { name: 'ElementInContext', epr: certRef(cert) },
          { name: 'ElementProvidingContext', epr: ENDPOINT_COLLECTION },
        ],
      };
    },
    delete() {
      model.working.tlsContextCert = undefined;
    },
  };
}

/** AMT_TLSSettingData: the network (802.3) and local (LMS) TLS settings; Put is pending until commit. */
export function tlsSettingData(model: AmtModel): ResourceClass {
  const className = 'AMT_TLSSettingData';
  const names = Object.keys(TLS_INSTANCE_IDS) as TlsInstance[];
  const instance = (which: TlsInstance): Instance => {
    const s = model.working.tls[which];
    return {
      keys: { InstanceID: TLS_INSTANCE_IDS[which] },
      properties: [
        ['AcceptNonSecureConnections', s.acceptNonSecureConnections],
        ['ElementName', TLS_INSTANCE_IDS[which]],
        ['Enabled', s.enabled],
        ['InstanceID', TLS_INSTANCE_IDS[which]],
        ['MutualAuthentication', s.mutualAuthentication],
        ['NonSecureConnectionsSupported', true],
        ['TrustedCN', s.trustedCn.length === 0 ? undefined : s.trustedCn],
      ],
    };
  };
  return {
    className,
    resourceUri: resourceUriOf(className),
    instances: () => names.map(instance),
    put(target, body) {
      const data = instanceBody(body, className);
      const which = names.find((n) => TLS_INSTANCE_IDS[n] === target.keys.InstanceID);
      if (which === undefined) throw new WsmanFault('InvalidSelectors');
      const bodyId = child(data, 'InstanceID')?.text;
      if (bodyId !== undefined && bodyId !== TLS_INSTANCE_IDS[which]) {
        throw new WsmanFault('InvalidParameter', 'InstanceID in the body differs from the selector.');
      }
      const s = model.working.tls[which];
      const enabled = parseBoolean(child(data, 'Enabled')?.text, 'Enabled');
      const acceptNonSecure = parseBoolean(
        child(data, 'AcceptNonSecureConnections')?.text,
        'AcceptNonSecureConnections',
      );
      const mutual = parseBoolean(child(data, 'MutualAuthentication')?.text, 'MutualAuthentication');
      if (enabled !== undefined) s.enabled = enabled;
      if (acceptNonSecure !== undefined) s.acceptNonSecureConnections = acceptNonSecure;
      if (mutual !== undefined) s.mutualAuthentication = mutual;
      const cns = childrenNamed(data, 'TrustedCN').map((c) => c.text);
      if (cns.length > 0) s.trustedCn = cns;
      return instance(which);
    },
  };
}
