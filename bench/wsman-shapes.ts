/**
 * The §6 PSK sequence as bench/wsman-codec.ts and bench/amt-client.ts run it: every operation
 * (our builders) with a reply shaped like AMT's (prefixes a/b/c/g as the firmware writes them,
 * values from a real AMT 6.2 device's sizes), plus Enumerate/Pull of CIM_SoftwareIdentity.
 * Each reply's RelatesTo is `uuid:1`; a bench that checks it substitutes the request's MessageID.
 */
import { AMT_SCHEMA } from '../src/amt/wsman/envelope.ts';
import type { Instance } from '../src/amt/wsman/operation.ts';
import { setAdminAclEntryEx } from '../src/amt/wsman/ops/authorization.ts';
import { getGeneralSettings, putGeneralSettings } from '../src/amt/wsman/ops/general-settings.ts';
import {
  addCertificate,
  generateKeyPair,
  generatePkcs10RequestEx,
  getPublicPrivateKeyPair,
} from '../src/amt/wsman/ops/public-key.ts';
import {
  commitChanges,
  getSetupAndConfigurationService,
  setMEBxPassword,
  setTlsPsk,
} from '../src/amt/wsman/ops/setup-and-configuration.ts';
import { getLowAccuracyTimeSynch, setHighAccuracyTimeSynch } from '../src/amt/wsman/ops/time-synchronization.ts';
import { createTlsCredentialContext, getTlsSettingData, putTlsSettingData } from '../src/amt/wsman/ops/tls.ts';
import type { Pid } from '../src/psk/pid.ts';
import type { Pps } from '../src/psk/pps.ts';
import { Secret } from '../src/secret.ts';

export const REALM = 'Digest:A3829B3827DE4D33D4449B366831FD01';
export const KEY = 'Intel(r) AMT Key: Handle: 0';
export const CERT = 'Intel(r) AMT Certificate: Handle: 1';
export const BLOB = 'MIIDazCCAlOgAwIBAgIUQ2zfnCgWjGAhNNHKXDx0'.repeat(20);
export const CSR = 'MIICijCCAXICAQAwRTELMAkGA1UEBhMCQVUx'.repeat(15);
export const PID = 'ABCDEFGH' as Pid;
export const PPS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345' as Pps;

export const GENERAL: Record<string, string> = {
  AMTNetworkEnabled: '1',
  DDNSPeriodicUpdateInterval: '1440',
  DDNSTTL: '900',
  DDNSUpdateByDHCPServerEnabled: 'true',
  DDNSUpdateEnabled: 'false',
  DigestRealm: REALM,
  DomainName: '',
  ElementName: 'Intel(r) AMT: General Settings',
  HostName: '',
  IdleWakeTimeout: '65535',
  InstanceID: 'Intel(r) AMT: General Settings',
  NetworkInterfaceEnabled: 'true',
  PingResponseEnabled: 'true',
  PowerSource: '0',
  PreferredAddressFamily: '0',
  PresenceNotificationInterval: '0',
  PrivacyLevel: '0',
  RmcpPingResponseEnabled: 'true',
  SharedFQDN: 'true',
  WsmanOnlyMode: 'false',
};
export const TLS: Record<string, string> = {
  AcceptNonSecureConnections: 'false',
  ElementName: 'Intel(r) AMT 802.3 TLS Settings',
  Enabled: 'false',
  InstanceID: 'Intel(r) AMT 802.3 TLS Settings',
  MutualAuthentication: 'false',
};
export const instance = (className: string, props: Record<string, string>): Instance => ({
  className,
  properties: Object.entries(props),
});

// ---- replies shaped like AMT's (prefixes a/b/c/g, as the firmware writes them) ----------------
function reply(action: string, classUri: string, body: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" ' +
    'xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" ' +
    `xmlns:g="${classUri}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header>` +
    '<b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:1</b:RelatesTo>' +
    `<b:Action a:mustUnderstand="true">${action}</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000000001</b:MessageID>` +
    `<c:ResourceURI>${classUri}</c:ResourceURI></a:Header><a:Body>${body}</a:Body></a:Envelope>`
  );
}
const props = (o: Record<string, string>) =>
  Object.entries(o)
    .map(([k, v]) => `<g:${k}>${v}</g:${k}>`)
    .join('');
const out = (method: string, inner = '') =>
  `<g:${method}_OUTPUT>${inner}<g:ReturnValue>0</g:ReturnValue></g:${method}_OUTPUT>`;
const epr = (cls: string, id: string) =>
  `<b:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:Address><b:ReferenceParameters><c:ResourceURI>${AMT_SCHEMA}${cls}</c:ResourceURI>` +
  `<c:SelectorSet><c:Selector Name="InstanceID">${id}</c:Selector></c:SelectorSet></b:ReferenceParameters>`;
const T = 'http://schemas.xmlsoap.org/ws/2004/09/transfer/';
const E = 'http://schemas.xmlsoap.org/ws/2004/09/enumeration/';
const cls = (c: string) => AMT_SCHEMA + c;
const m = (c: string, method: string) => `${AMT_SCHEMA}${c}/${method}Response`;

export const R = {
  general: reply(
    `${T}GetResponse`,
    cls('AMT_GeneralSettings'),
    `<g:AMT_GeneralSettings>${props(GENERAL)}</g:AMT_GeneralSettings>`,
  ),
  setup: reply(
    `${T}GetResponse`,
    cls('AMT_SetupAndConfigurationService'),
    '<g:AMT_SetupAndConfigurationService><g:CreationClassName>AMT_SetupAndConfigurationService</g:CreationClassName><g:ElementName>Intel(r) AMT Setup and Configuration Service</g:ElementName>' +
      '<g:EnabledState>5</g:EnabledState><g:Name>Intel(r) AMT Setup and Configuration Service</g:Name><g:PasswordModel>1</g:PasswordModel><g:ProvisioningMode>1</g:ProvisioningMode>' +
      '<g:ProvisioningServerOTP></g:ProvisioningServerOTP><g:ProvisioningState>1</g:ProvisioningState><g:RequestedState>12</g:RequestedState><g:SystemCreationClassName>CIM_ComputerSystem</g:SystemCreationClassName>' +
      '<g:SystemName>Intel(r) AMT</g:SystemName><g:ZeroTouchConfigurationEnabled>true</g:ZeroTouchConfigurationEnabled></g:AMT_SetupAndConfigurationService>',
  ),
  enumerate: reply(
    `${E}EnumerateResponse`,
    'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_SoftwareIdentity',
    '<g:EnumerateResponse><g:EnumerationContext>AC070000-0000-0000-0000-000000000000</g:EnumerationContext></g:EnumerateResponse>',
  ),
  pull: reply(
    `${E}PullResponse`,
    'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_SoftwareIdentity',
    '<g:PullResponse><g:Items>' +
      [
        'Flash',
        'Netstack',
        'AMTApps',
        'AMT',
        'Sku',
        'VendorID',
        'Build Number',
        'Recovery Version',
        'Recovery Build Num',
        'Legacy Mode',
      ]
        .map(
          (id) =>
            `<h:CIM_SoftwareIdentity xmlns:h="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_SoftwareIdentity"><h:InstanceID>${id}</h:InstanceID><h:IsEntity>true</h:IsEntity><h:VersionString>6.2.0</h:VersionString></h:CIM_SoftwareIdentity>`,
        )
        .join('') +
      '</g:Items><g:EndOfSequence></g:EndOfSequence></g:PullResponse>',
  ),
  acl: reply(
    m('AMT_AuthorizationService', 'SetAdminAclEntryEx'),
    cls('AMT_AuthorizationService'),
    out('SetAdminAclEntryEx'),
  ),
  mebx: reply(
    m('AMT_SetupAndConfigurationService', 'SetMEBxPassword'),
    cls('AMT_SetupAndConfigurationService'),
    out('SetMEBxPassword'),
  ),
  low: reply(
    m('AMT_TimeSynchronizationService', 'GetLowAccuracyTimeSynch'),
    cls('AMT_TimeSynchronizationService'),
    out('GetLowAccuracyTimeSynch', '<g:Ta0>1700000000</g:Ta0>'),
  ),
  high: reply(
    m('AMT_TimeSynchronizationService', 'SetHighAccuracyTimeSynch'),
    cls('AMT_TimeSynchronizationService'),
    out('SetHighAccuracyTimeSynch'),
  ),
  put: reply(
    `${T}PutResponse`,
    cls('AMT_GeneralSettings'),
    `<g:AMT_GeneralSettings>${props({ ...GENERAL, HostName: 'h', DomainName: 'd' })}</g:AMT_GeneralSettings>`,
  ),
  keyPair: reply(
    m('AMT_PublicKeyManagementService', 'GenerateKeyPair'),
    cls('AMT_PublicKeyManagementService'),
    out('GenerateKeyPair', `<g:KeyPair>${epr('AMT_PublicPrivateKeyPair', KEY)}</g:KeyPair>`),
  ),
  getKey: reply(
    `${T}GetResponse`,
    cls('AMT_PublicPrivateKeyPair'),
    `<g:AMT_PublicPrivateKeyPair><g:DERKey>${CSR}</g:DERKey><g:ElementName>Intel(r) AMT Key</g:ElementName><g:InstanceID>${KEY}</g:InstanceID></g:AMT_PublicPrivateKeyPair>`,
  ),
  pkcs10: reply(
    m('AMT_PublicKeyManagementService', 'GeneratePKCS10RequestEx'),
    cls('AMT_PublicKeyManagementService'),
    out('GeneratePKCS10RequestEx', `<g:SignedCertificateRequest>${CSR}</g:SignedCertificateRequest>`),
  ),
  addCert: reply(
    m('AMT_PublicKeyManagementService', 'AddCertificate'),
    cls('AMT_PublicKeyManagementService'),
    out('AddCertificate', `<g:CreatedCertificate>${epr('AMT_PublicKeyCertificate', CERT)}</g:CreatedCertificate>`),
  ),
  ctx: reply(
    `${T}CreateResponse`,
    cls('AMT_TLSCredentialContext'),
    `<b:ResourceCreated>${epr('AMT_TLSCredentialContext', 'x')}</b:ResourceCreated>`,
  ),
  tlsGet: reply(
    `${T}GetResponse`,
    cls('AMT_TLSSettingData'),
    `<g:AMT_TLSSettingData>${props(TLS)}</g:AMT_TLSSettingData>`,
  ),
  tlsPut: reply(
    `${T}PutResponse`,
    cls('AMT_TLSSettingData'),
    `<g:AMT_TLSSettingData>${props({ ...TLS, Enabled: 'true' })}</g:AMT_TLSSettingData>`,
  ),
  psk: reply(
    m('AMT_SetupAndConfigurationService', 'SetTLSPSK'),
    cls('AMT_SetupAndConfigurationService'),
    out('SetTLSPSK'),
  ),
  commit: reply(
    m('AMT_SetupAndConfigurationService', 'CommitChanges'),
    cls('AMT_SetupAndConfigurationService'),
    out('CommitChanges'),
  ),
};

export const password = new Secret('N3w-Admin!pw');
export const ours: (() => unknown)[] = [
  () => getGeneralSettings(),
  () => getSetupAndConfigurationService(),
  () => setAdminAclEntryEx({ username: 'admin', realm: REALM, password }),
  () => setMEBxPassword(password),
  () => getLowAccuracyTimeSynch(),
  () => setHighAccuracyTimeSynch({ ta0: 1700000000, tm1: 1700000001, tm2: 1700000002 }),
  () => putGeneralSettings(instance('AMT_GeneralSettings', GENERAL), { hostName: 'h', domainName: 'd' }),
  () => generateKeyPair(),
  () => getPublicPrivateKeyPair(KEY),
  () => generatePkcs10RequestEx({ keyPairInstanceId: KEY, nullSignedCertificateRequest: CSR }),
  () => addCertificate(BLOB),
  () => createTlsCredentialContext(CERT),
  () => getTlsSettingData(),
  () => putTlsSettingData(instance('AMT_TLSSettingData', TLS), { enabled: true }),
  () => setTlsPsk(PID, new Secret(PPS)),
  () => commitChanges(),
];
export const ourReplies = [
  R.general,
  R.setup,
  R.acl,
  R.mebx,
  R.low,
  R.high,
  R.put,
  R.keyPair,
  R.getKey,
  R.pkcs10,
  R.addCert,
  R.ctx,
  R.tlsGet,
  R.tlsPut,
  R.psk,
  R.commit,
];
