import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AMT, CIM } from '@device-management-toolkit/wsman-messages';
import { WSManMessageCreator } from '@device-management-toolkit/wsman-messages/WSMan.js';
import { parseStringPromise, processors } from 'xml2js';
import type { Pid } from '../../psk/pid.ts';
import type { Pps } from '../../psk/pps.ts';
import { Secret } from '../../secret.ts';
import { AMT_SCHEMA, buildEnvelope, type WsmanRequest } from './envelope.ts';
import { enumerateCall, pullCall } from './enumerate.ts';
import type { Instance } from './operation.ts';
import { digestPassword, setAdminAclEntryEx } from './ops/authorization.ts';
import { getGeneralSettings, putGeneralSettings } from './ops/general-settings.ts';
import { identify } from './ops/identify.ts';
import { addCertificate, generateKeyPair, generatePkcs10RequestEx, getPublicPrivateKeyPair } from './ops/public-key.ts';
import {
  commitChanges,
  getSetupAndConfigurationService,
  getUuid,
  partialUnprovision,
  setMEBxPassword,
  setTlsPsk,
  unprovision,
} from './ops/setup-and-configuration.ts';
import { getLowAccuracyTimeSynch, setHighAccuracyTimeSynch } from './ops/time-synchronization.ts';
import { createTlsCredentialContext, getTlsSettingData, putTlsSettingData, TLS_SETTINGS_802_3 } from './ops/tls.ts';

/**
 * Every request this project sends, compared with what Intel's own builder
 * (@device-management-toolkit/wsman-messages, a devDependency used only as an oracle) sends for
 * the same operation. Both documents are parsed by xml2js (not by our parse.ts) and compared on
 * what a device acts on: Action, To, ResourceURI, ReplyTo, OperationTimeout, selectors, and the
 * Body tree (namespace URI + local name, attributes, text, order). MessageID differs by design.
 */

interface Canon {
  ns: string;
  name: string;
  attrs: Record<string, string>;
  text: string;
  children: Canon[];
}

interface XNode {
  '#name': string;
  $?: Record<string, { value: string } | string>;
  $ns?: { uri: string; local: string };
  _?: string;
  $$?: XNode[];
}

function canon(node: XNode): Canon {
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(node.$ ?? {})) {
    if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
    attrs[k] = typeof v === 'string' ? v : v.value;
  }
  return {
    ns: node.$ns?.uri ?? '',
    name: node.$ns?.local ?? node['#name'],
    attrs,
    text: (node._ ?? '').trim(),
    children: (node.$$ ?? []).map(canon),
  };
}

async function parse(xml: string): Promise<Canon> {
  const doc = (await parseStringPromise(xml, {
    explicitChildren: true,
    preserveChildrenOrder: true,
    xmlns: true,
    tagNameProcessors: [processors.stripPrefix],
  })) as Record<string, XNode>;
  const root = Object.values(doc)[0];
  assert.ok(root);
  return canon(root);
}

const find = (n: Canon | undefined, name: string): Canon | undefined => n?.children.find((c) => c.name === name);

async function essentials(xml: string) {
  const env = await parse(xml);
  const header = find(env, 'Header');
  const pick = (name: string) => find(header, name)?.text;
  return {
    envelopeNs: env.ns,
    action: pick('Action'),
    to: pick('To'),
    resourceUri: pick('ResourceURI'),
    replyTo: find(find(header, 'ReplyTo'), 'Address')?.text,
    timeout: pick('OperationTimeout'),
    selectors: find(header, 'SelectorSet') ?? null,
    messageIdPresent: pick('MessageID') !== undefined,
    body: find(env, 'Body'),
  };
}

async function assertSame(ours: WsmanRequest, oracle: string): Promise<void> {
  const mine = await essentials(buildEnvelope(ours, 'uuid:00000000-0000-4000-8000-000000000000'));
  const theirs = await essentials(oracle);
  assert.deepEqual(mine, theirs);
}

const amt = new AMT.Messages();
const cim = new CIM.Messages();
/** Intel's generic builder, for the §6 methods its class wrappers lack (SetTLSPSK, PartialUnprovision). */
const creator = new WSManMessageCreator(AMT_SCHEMA);
const oracleMethod = (cls: AMT.Classes, method: string, params?: Record<string, unknown>) =>
  creator.createXml(
    creator.createHeader(`${AMT_SCHEMA}${cls}/${method}`, cls),
    creator.createBody(`${method}_INPUT`, cls, params ? [params] : undefined),
  );

const REALM = 'Digest:0123456789ABCDEF0123456789ABCDEF';

/** An AMT_GeneralSettings instance as a device returns it (order matters for Put). */
const GENERAL: Record<string, string> = {
  AMTNetworkEnabled: '1',
  DDNSPeriodicUpdateInterval: '1440',
  DDNSTTL: '900',
  DDNSUpdateByDHCPServerEnabled: 'true',
  DDNSUpdateEnabled: 'false',
  DHCPv6ConfigurationTimeout: '0',
  DigestRealm: REALM,
  DomainName: '',
  ElementName: 'Intel(r) AMT: General Settings',
  HostName: '',
  HostOSFQDN: '',
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
  ThunderboltDockEnabled: '0',
  WsmanOnlyMode: 'false',
};
const TLS: Record<string, string> = {
  AcceptNonSecureConnections: 'false',
  ElementName: 'Intel(r) AMT 802.3 TLS Settings',
  Enabled: 'false',
  InstanceID: TLS_SETTINGS_802_3,
  MutualAuthentication: 'false',
};
const asInstance = (className: string, props: Record<string, string>): Instance => ({
  className,
  properties: Object.entries(props),
});

const KEY_HANDLE = 'Intel(r) AMT Key: Handle: 0';
const CERT_HANDLE = 'Intel(r) AMT Certificate: Handle: 1';
const CSR = 'MIICijCCAXICAQAwRTELMAkGA1UEBhMCQVUx';
const CERT = 'MIIDazCCAlOgAwIBAgIUQ2zfnCgWjGAhNNHKXDx0';

describe('WS-Man requests match Intel wsman-messages for every §6 operation', () => {
  it('Get AMT_GeneralSettings', async () => {
    await assertSame(getGeneralSettings().request, amt.GeneralSettings.Get());
  });

  it('Get AMT_SetupAndConfigurationService', async () => {
    await assertSame(getSetupAndConfigurationService().request, amt.SetupAndConfigurationService.Get());
  });

  it('Enumerate and Pull CIM_SoftwareIdentity', async () => {
    await assertSame(enumerateCall('CIM_SoftwareIdentity'), cim.SoftwareIdentity.Enumerate());
    await assertSame(
      pullCall('CIM_SoftwareIdentity', 'AC070000-0000-0000-0000-000000000000'),
      cim.SoftwareIdentity.Pull('AC070000-0000-0000-0000-000000000000'),
    );
  });

  it('AMT_AuthorizationService.SetAdminAclEntryEx with DigestPassword = base64(MD5(user:realm:password))', async () => {
    const entry = { username: 'admin', realm: REALM, password: new Secret('N3w-Adm1n!pw') };
    await assertSame(
      setAdminAclEntryEx(entry).request,
      amt.AuthorizationService.SetAdminACLEntryEx('admin', digestPassword(entry)),
    );
  });

  it('AMT_SetupAndConfigurationService.SetMEBxPassword', async () => {
    await assertSame(
      setMEBxPassword(new Secret('Mebx-Pw0rd')).request,
      amt.SetupAndConfigurationService.SetMEBXPassword('Mebx-Pw0rd'),
    );
  });

  it('AMT_TimeSynchronizationService.GetLowAccuracyTimeSynch and SetHighAccuracyTimeSynch', async () => {
    await assertSame(getLowAccuracyTimeSynch().request, amt.TimeSynchronizationService.GetLowAccuracyTimeSynch());
    await assertSame(
      setHighAccuracyTimeSynch({ ta0: 1700000000, tm1: 1700000001, tm2: 1700000002 }).request,
      amt.TimeSynchronizationService.SetHighAccuracyTimeSynch(1700000000, 1700000001, 1700000002),
    );
  });

  it('Put AMT_GeneralSettings: the whole instance as read, HostName and DomainName changed, InstanceID selector', async () => {
    const changed = { ...GENERAL, HostName: 'amt-host', DomainName: 'corp.example' };
    // wsman-messages' GeneralSettings.Put omits the selector; §6 step 5 names it, so the oracle's
    // generic Put is asked for the header selector.
    const oraclePut = (
      amt.GeneralSettings as unknown as { protectedPut(d: object, sel: boolean): string }
    ).protectedPut(changed, true);
    await assertSame(
      putGeneralSettings(asInstance('AMT_GeneralSettings', GENERAL), {
        hostName: 'amt-host',
        domainName: 'corp.example',
      }).request,
      oraclePut,
    );
  });

  it('AMT_PublicKeyManagementService.GenerateKeyPair', async () => {
    await assertSame(
      generateKeyPair().request,
      amt.PublicKeyManagementService.GenerateKeyPair({ KeyAlgorithm: 0, KeyLength: 2048 }),
    );
  });

  it('Get AMT_PublicPrivateKeyPair by InstanceID', async () => {
    await assertSame(
      getPublicPrivateKeyPair(KEY_HANDLE).request,
      amt.PublicPrivateKeyPair.Get({ name: 'InstanceID', value: KEY_HANDLE }),
    );
  });

  it('AMT_PublicKeyManagementService.GeneratePKCS10RequestEx with the key pair as an EPR', async () => {
    // The KeyPair reference as Intel's RPS passes it to this builder.
    const keyPair =
      '<a:Address>/wsman</a:Address><a:ReferenceParameters><w:ResourceURI>http://intel.com/wbem/wscim/1/amt-schema/1/AMT_PublicPrivateKeyPair</w:ResourceURI>' +
      `<w:SelectorSet><w:Selector Name="InstanceID">${KEY_HANDLE}</w:Selector></w:SelectorSet></a:ReferenceParameters>`;
    await assertSame(
      generatePkcs10RequestEx({ keyPairInstanceId: KEY_HANDLE, nullSignedCertificateRequest: CSR }).request,
      amt.PublicKeyManagementService.GeneratePKCS10RequestEx({
        KeyPair: keyPair,
        SigningAlgorithm: 1,
        NullSignedCertificateRequest: CSR,
      } as never),
    );
  });

  it('AMT_PublicKeyManagementService.AddCertificate', async () => {
    await assertSame(
      addCertificate(CERT).request,
      amt.PublicKeyManagementService.AddCertificate({ CertificateBlob: CERT }),
    );
  });

  it('Create AMT_TLSCredentialContext', async () => {
    await assertSame(createTlsCredentialContext(CERT_HANDLE).request, amt.TLSCredentialContext.Create(CERT_HANDLE));
  });

  it('Get and Put AMT_TLSSettingData (802.3, Enabled=true)', async () => {
    await assertSame(
      getTlsSettingData().request,
      amt.TLSSettingData.Get({ name: 'InstanceID', value: TLS_SETTINGS_802_3 }),
    );
    await assertSame(
      putTlsSettingData(asInstance('AMT_TLSSettingData', TLS), { enabled: true }).request,
      amt.TLSSettingData.Put({ ...TLS, Enabled: 'true' } as never),
    );
  });

  it('AMT_SetupAndConfigurationService.SetTLSPSK(PID, PPS) as string parameters', async () => {
    const pid = 'ABCDEFGH' as Pid;
    const pps = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345' as Pps;
    await assertSame(
      setTlsPsk(pid, new Secret(pps)).request,
      oracleMethod(AMT.Classes.SETUP_AND_CONFIGURATION_SERVICE, 'SetTLSPSK', { PID: pid, PPS: pps }),
    );
  });

  it('AMT_SetupAndConfigurationService.CommitChanges, Unprovision, PartialUnprovision, GetUuid', async () => {
    await assertSame(commitChanges().request, amt.SetupAndConfigurationService.CommitChanges());
    await assertSame(unprovision(1).request, amt.SetupAndConfigurationService.Unprovision(1));
    await assertSame(
      partialUnprovision().request,
      oracleMethod(AMT.Classes.SETUP_AND_CONFIGURATION_SERVICE, 'PartialUnprovision', {}),
    );
    await assertSame(getUuid().request, amt.SetupAndConfigurationService.GetUuid());
  });

  it('Identify, as DSP0226 §11 writes it (wsman-messages has no Identify)', async () => {
    const dsp0226 =
      '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">' +
      '<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>';
    await assertSame(identify().request, dsp0226);
  });
});

describe('the comparison itself', () => {
  it('notices a different value, a different selector and a different action', async () => {
    await assert.rejects(
      assertSame(
        setMEBxPassword(new Secret('Mebx-Pw0rd')).request,
        amt.SetupAndConfigurationService.SetMEBXPassword('Other-Pw0rd'),
      ),
    );
    await assert.rejects(
      assertSame(
        getTlsSettingData('Intel(r) AMT LMS TLS Settings').request,
        amt.TLSSettingData.Get({ name: 'InstanceID', value: TLS_SETTINGS_802_3 }),
      ),
    );
    await assert.rejects(assertSame(commitChanges().request, amt.SetupAndConfigurationService.GetUuid()));
  });
});

describe('request values are escaped', () => {
  it('escapes markup in values and selector names so it stays text', async () => {
    const tricky = 'a&b<c>"d\'</h:HostName>';
    const xml = buildEnvelope(
      putGeneralSettings(asInstance('AMT_GeneralSettings', GENERAL), { hostName: tricky }).request,
      'uuid:x',
    );
    const env = await parse(xml);
    const body = find(find(env, 'Body'), 'AMT_GeneralSettings');
    assert.equal(find(body, 'HostName')?.text, tricky);
    assert.equal(body?.children.length, Object.keys(GENERAL).length);
  });

  it('keeps a password out of the envelope except where the method carries it', () => {
    const xml = buildEnvelope(
      setAdminAclEntryEx({ username: 'admin', realm: REALM, password: new Secret('Only-In-Ha1!') }).request,
      'uuid:x',
    );
    assert.ok(!xml.includes('Only-In-Ha1!'));
  });
});
