import type { AmtModel } from '../../device/model.ts';
import { isValidDomainName, isValidHostName } from '../../device/setup.ts';
import { WsmanFault } from '../fault.ts';
import { resourceUriOf } from '../namespaces.ts';
import { instanceBody, type Instance, type ResourceClass } from '../resource.ts';
import { child } from '../xml.ts';

export const GENERAL_SETTINGS_ID = 'Intel(r) AMT: General Settings';

/**
 * AMT_GeneralSettings (protocol.md §6 steps 1 and 5). Get shows the working copy, so a Put is
 * visible at once; the device uses the new names only after CommitChanges. HostName and
 * DomainName are writable; DigestRealm and the rest are read-only and ignored in a Put.
 */
export function generalSettings(model: AmtModel): ResourceClass {
  const className = 'AMT_GeneralSettings';
  const instance = (): Instance => ({
    keys: { InstanceID: GENERAL_SETTINGS_ID },
    properties: [
      ['AMTNetworkEnabled', 1],
      ['DDNSPeriodicUpdateInterval', 1440],
      ['DDNSTTL', 900],
      ['DDNSUpdateByDHCPServerEnabled', true],
      ['DDNSUpdateEnabled', false],
      ['DHCPv6ConfigurationTimeout', 0],
      ['DigestRealm', model.digestRealm],
      ['DomainName', model.working.domainName],
      ['ElementName', GENERAL_SETTINGS_ID],
      ['HostName', model.working.hostName],
      ['HostOSFQDN', ''],
      ['IdleWakeTimeout', 65535],
      ['InstanceID', GENERAL_SETTINGS_ID],
      ['NetworkInterfaceEnabled', true],
      ['PingResponseEnabled', true],
      ['PowerSource', 0],
      ['PreferredAddressFamily', 0],
      ['PresenceNotificationInterval', 0],
      ['PrivacyLevel', 0],
      ['RmcpPingResponseEnabled', true],
      ['SharedFQDN', true],
      ['WsmanOnlyMode', false],
    ],
  });
  return {
    className,
    resourceUri: resourceUriOf(className),
    instances: () => [instance()],
    put(_target, body) {
      const data = instanceBody(body, className);
      const host = child(data, 'HostName')?.text;
      const domain = child(data, 'DomainName')?.text;
      if (host !== undefined && !isValidHostName(host)) {
        throw new WsmanFault('InvalidParameter', `HostName "${host}" is not a DNS label of at most 63 characters.`);
      }
      if (domain !== undefined && !isValidDomainName(domain)) {
        throw new WsmanFault('InvalidParameter', `DomainName "${domain}" is not a DNS name.`);
      }
      if (host !== undefined) model.working.hostName = host;
      if (domain !== undefined) model.working.domainName = domain;
      return instance();
    },
  };
}
