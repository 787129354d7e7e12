/**
 * WS-Man codec benchmark: build every request of the §6 PSK sequence and parse its reply,
 * (a) with this project's builders + parse.ts into typed results, (b) with Intel's
 * @device-management-toolkit/wsman-messages builders + xml2js parsing (configured as DMT's RPS
 * does: explicitArray false, prefixes stripped). Same messages, same process, alternating
 * rounds. Writes bench/out/wsman-codec-<stamp>.json and prints a readable summary.
 * Run: node --import tsx bench/wsman-codec.ts [--seconds 2]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AMT, CIM } from '@device-management-toolkit/wsman-messages';
import { WSManMessageCreator } from '@device-management-toolkit/wsman-messages/WSMan.js';
import { XMLParser } from 'fast-xml-parser';
import { Parser, processors } from 'xml2js';
import { AMT_SCHEMA, buildEnvelope } from '../src/amt/wsman/envelope.ts';
import { enumerateCall, pullCall } from '../src/amt/wsman/enumerate.ts';
import type { Instance } from '../src/amt/wsman/operation.ts';
import { digestPassword, setAdminAclEntryEx } from '../src/amt/wsman/ops/authorization.ts';
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
import { parseWsman, child, children, text, isObject, type WsmanReply, type XmlValue } from '../src/amt/wsman/parse.ts';
import type { Pid } from '../src/psk/pid.ts';
import type { Pps } from '../src/psk/pps.ts';
import { Secret } from '../src/secret.ts';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 2;
const load0 = loadavg();

const REALM = 'Digest:A3829B3827DE4D33D4449B366831FD01';
const KEY = 'Intel(r) AMT Key: Handle: 0';
const CERT = 'Intel(r) AMT Certificate: Handle: 1';
const BLOB = 'MIIDazCCAlOgAwIBAgIUQ2zfnCgWjGAhNNHKXDx0'.repeat(20);
const CSR = 'MIICijCCAXICAQAwRTELMAkGA1UEBhMCQVUx'.repeat(15);
const PID = 'ABCDEFGH' as Pid;
const PPS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345' as Pps;

const GENERAL: Record<string, string> = {
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
const TLS: Record<string, string> = {
  AcceptNonSecureConnections: 'false',
  ElementName: 'Intel(r) AMT 802.3 TLS Settings',
  Enabled: 'false',
  InstanceID: 'Intel(r) AMT 802.3 TLS Settings',
  MutualAuthentication: 'false',
};
const instance = (className: string, props: Record<string, string>): Instance => ({
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

const R = {
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

// ---- (a) ours ---------------------------------------------------------------------------------
const password = new Secret('N3w-Admin!pw');
const ours: (() => unknown)[] = [
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
const ourReplies = [
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

/**
 * (c) for the record: our builders and typed parsing with fast-xml-parser 5 in place of xml.ts,
 * set up as parse.ts was at first (the brief's choice), to show what the switch bought.
 */
const fxp = new XMLParser({
  removeNSPrefix: true,
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  trimValues: true,
});
function parseWithFxp(xml: string): WsmanReply {
  if (/<!\s*(DOCTYPE|ENTITY)/i.test(xml)) throw new Error('DOCTYPE');
  const envelope = child(fxp.parse(xml) as XmlValue, 'Envelope');
  const header = child(envelope, 'Header');
  const body = child(envelope, 'Body');
  return {
    header: isObject(header) ? header : {},
    body: isObject(body) ? body : {},
    action: text(child(header, 'Action')),
    relatesTo: text(child(header, 'RelatesTo')),
    messageId: text(child(header, 'MessageID')),
  };
}

function oursOnce(parse: (xml: string) => WsmanReply = parseWsman): number {
  let n = 0;
  for (let i = 0; i < ours.length; i++) {
    const op = (
      ours[i] as () => {
        request: Parameters<typeof buildEnvelope>[0];
        parse: (r: ReturnType<typeof parseWsman>) => unknown;
      }
    )();
    n += buildEnvelope(op.request, 'uuid:6b1d3f4e-1c2b-4e58-9c8e-5a7d0e9f1a23').length;
    op.parse(parse(ourReplies[i] as string));
  }
  // Enumerate + Pull of CIM_SoftwareIdentity.
  n += buildEnvelope(enumerateCall('CIM_SoftwareIdentity'), 'uuid:1').length;
  text(child(child(parse(R.enumerate).body, 'EnumerateResponse'), 'EnumerationContext'));
  n += buildEnvelope(pullCall('CIM_SoftwareIdentity', 'AC070000-0000-0000-0000-000000000000'), 'uuid:2').length;
  n += children(child(child(parse(R.pull).body, 'PullResponse'), 'Items'), 'CIM_SoftwareIdentity').length;
  return n;
}

// ---- (b) wsman-messages + xml2js --------------------------------------------------------------
const amt = new AMT.Messages();
const cim = new CIM.Messages();
const creator = new WSManMessageCreator(AMT_SCHEMA);
const keyPairRef =
  `<a:Address>/wsman</a:Address><a:ReferenceParameters><w:ResourceURI>${AMT_SCHEMA}AMT_PublicPrivateKeyPair</w:ResourceURI>` +
  `<w:SelectorSet><w:Selector Name="InstanceID">${KEY}</w:Selector></w:SelectorSet></a:ReferenceParameters>`;
const dp = digestPassword({ username: 'admin', realm: REALM, password });
const theirs: (() => string)[] = [
  () => amt.GeneralSettings.Get(),
  () => amt.SetupAndConfigurationService.Get(),
  () => amt.AuthorizationService.SetAdminACLEntryEx('admin', dp),
  () => amt.SetupAndConfigurationService.SetMEBXPassword('N3w-Admin!pw'),
  () => amt.TimeSynchronizationService.GetLowAccuracyTimeSynch(),
  () => amt.TimeSynchronizationService.SetHighAccuracyTimeSynch(1700000000, 1700000001, 1700000002),
  () =>
    (amt.GeneralSettings as unknown as { protectedPut(d: object, s: boolean): string }).protectedPut(
      { ...GENERAL, HostName: 'h', DomainName: 'd' },
      true,
    ),
  () => amt.PublicKeyManagementService.GenerateKeyPair({ KeyAlgorithm: 0, KeyLength: 2048 }),
  () => amt.PublicPrivateKeyPair.Get({ name: 'InstanceID', value: KEY }),
  () =>
    amt.PublicKeyManagementService.GeneratePKCS10RequestEx({
      KeyPair: keyPairRef,
      SigningAlgorithm: 1,
      NullSignedCertificateRequest: CSR,
    } as never),
  () => amt.PublicKeyManagementService.AddCertificate({ CertificateBlob: BLOB }),
  () => amt.TLSCredentialContext.Create(CERT),
  () => amt.TLSSettingData.Get({ name: 'InstanceID', value: 'Intel(r) AMT 802.3 TLS Settings' }),
  () => amt.TLSSettingData.Put({ ...TLS, Enabled: 'true' } as never),
  () =>
    creator.createXml(
      creator.createHeader(
        `${AMT_SCHEMA}AMT_SetupAndConfigurationService/SetTLSPSK`,
        AMT.Classes.SETUP_AND_CONFIGURATION_SERVICE,
      ),
      creator.createBody('SetTLSPSK_INPUT', AMT.Classes.SETUP_AND_CONFIGURATION_SERVICE, [{ PID, PPS }]),
    ),
  () => amt.SetupAndConfigurationService.CommitChanges(),
];
const xml2js = new Parser({
  explicitArray: false,
  tagNameProcessors: [processors.stripPrefix],
  valueProcessors: [processors.parseNumbers, processors.parseBooleans],
});
function parseXml2js(xml: string): unknown {
  let result: unknown;
  // xml2js calls back synchronously unless `async: true`.
  xml2js.parseString(xml, (err: Error | null, r: unknown) => {
    if (err) throw err;
    result = r;
  });
  return result;
}

function theirsOnce(): number {
  let n = 0;
  for (let i = 0; i < theirs.length; i++) {
    n += (theirs[i] as () => string)().length;
    parseXml2js(ourReplies[i] as string);
  }
  n += cim.SoftwareIdentity.Enumerate().length;
  parseXml2js(R.enumerate);
  n += cim.SoftwareIdentity.Pull('AC070000-0000-0000-0000-000000000000').length;
  parseXml2js(R.pull);
  return n;
}

const MESSAGES_PER_SEQUENCE = ours.length + 2;

function measure(fn: () => number, ms: number): { sequences: number; ms: number } {
  const start = performance.now();
  let sequences = 0;
  let sink = 0;
  while (performance.now() - start < ms) {
    for (let i = 0; i < 20; i++) sink += fn();
    sequences += 20;
  }
  if (sink < 0) console.error(sink);
  return { sequences, ms: performance.now() - start };
}

// Warm up both, then alternate rounds so neither side gets a cooler or hotter machine.
const oursFxpOnce = (): number => oursOnce(parseWithFxp);
measure(() => oursOnce(), 300);
measure(oursFxpOnce, 300);
measure(theirsOnce, 300);
const totals = { ours: { sequences: 0, ms: 0 }, oursFxp: { sequences: 0, ms: 0 }, theirs: { sequences: 0, ms: 0 } };
const rounds = 6;
for (let r = 0; r < rounds; r++) {
  for (const [side, fn] of [
    ['ours', () => oursOnce()],
    ['oursFxp', oursFxpOnce],
    ['theirs', theirsOnce],
  ] as const) {
    const m = measure(fn, (seconds * 1000) / (rounds * 3));
    totals[side].sequences += m.sequences;
    totals[side].ms += m.ms;
  }
}
const rate = (t: { sequences: number; ms: number }) => (t.sequences * 1000) / t.ms;
const oursRate = rate(totals.ours);
const theirsRate = rate(totals.theirs);
const ratio = oursRate / theirsRate;
const fxpRate = rate(totals.oursFxp);
const result = {
  bench: 'wsman-codec',
  what: 'build request + parse reply for the §6 PSK sequence (16 operations + Enumerate/Pull)',
  messagesPerSequence: MESSAGES_PER_SEQUENCE,
  node: process.version,
  loadAverage: { atStart: load0, atEnd: loadavg() },
  ours: { sequencesPerSec: Math.round(oursRate), messagesPerSec: Math.round(oursRate * MESSAGES_PER_SEQUENCE) },
  wsmanMessagesXml2js: {
    sequencesPerSec: Math.round(theirsRate),
    messagesPerSec: Math.round(theirsRate * MESSAGES_PER_SEQUENCE),
  },
  ratio: Number(ratio.toFixed(2)),
  withFastXmlParser5: {
    sequencesPerSec: Math.round(fxpRate),
    ratioToWsmanMessagesXml2js: Number((fxpRate / theirsRate).toFixed(2)),
  },
  target: 3,
  meetsTarget: ratio >= 3,
};
const outDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'out');
mkdirSync(outDir, { recursive: true });
const file = path.join(outDir, `wsman-codec-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(
  [
    `wsman codec, node ${process.version}, load average ${load0[0]?.toFixed(2)} → ${loadavg()[0]?.toFixed(2)}: build + parse of the §6 sequence (${MESSAGES_PER_SEQUENCE} messages)`,
    `  ours (builders + xml.ts/parse.ts)        ${result.ours.sequencesPerSec} sequences/s = ${result.ours.messagesPerSec} messages/s`,
    `  wsman-messages + xml2js                  ${result.wsmanMessagesXml2js.sequencesPerSec} sequences/s = ${result.wsmanMessagesXml2js.messagesPerSec} messages/s`,
    `  ours with fast-xml-parser 5 (reference)  ${result.withFastXmlParser5.sequencesPerSec} sequences/s`,
    `  ratio ours / wsman-messages+xml2js: ${result.ratio} (target ≥ 3: ${result.meetsTarget ? 'met' : 'NOT met'})`,
    `written: ${file}`,
    '',
  ].join('\n'),
);
