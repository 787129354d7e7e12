import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AMT, CIM, IPS } from '@device-management-toolkit/wsman-messages';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import { MEBX_PASSWORD, startPeerDevice, type PeerDevice } from './helpers.ts';
import { issueForRequest, makePeerCa, nullSignedRequest, type PeerCa } from './pki.ts';
import { replyBody, replyHeader, text, TestWsmanClient, type TestReply } from './wsman-client.ts';

/**
 * Intel's own request builder (@device-management-toolkit/wsman-messages, as used by DMT's RPS)
 * driving the protocol.md §6 sequence against a simulated device over real sockets: TLS-PSK on
 * the device's TLS port, HTTP Digest by this folder's own client, every request built by the
 * library (SetTLSPSK, which it lacks a helper for, through its own envelope builder).
 */
const amt = new AMT.Messages();
const cim = new CIM.Messages();
const ips = new IPS.Messages();

const ADMIN_USER = 'scsadmin';
const ADMIN_PASSWORD = 'Adm1n-Pa55!';

/** `Body.<path...>` of a reply as text. */
function at(r: TestReply, ...names: string[]): string {
  let v: unknown = replyBody(r.body);
  for (const n of names) v = (v as Record<string, unknown> | undefined)?.[n];
  return text(v);
}

function returnValue(r: TestReply, method: string): number {
  assert.equal(r.status, 200, r.body);
  return Number(at(r, `${method}_OUTPUT`, 'ReturnValue'));
}

/** A method the library has no helper for, built with the library's own envelope code. */
function method(className: AMT.Classes, name: string, input: Record<string, string>): string {
  const creator = amt.SetupAndConfigurationService.wsmanMessageCreator;
  const header = creator.createHeader(`http://intel.com/wbem/wscim/1/amt-schema/1/${className}/${name}`, className);
  return creator.createXml(header, creator.createBody(`${name}_INPUT`, className, [input]));
}

describe('wsman-messages requests against a simulated device (protocol.md §6 over TLS-PSK)', () => {
  let d: PeerDevice;
  let ca: PeerCa;
  let c: TestWsmanClient;
  let realm = '';
  const newPid = generatePid();
  const newPps = generatePps();

  before(async () => {
    d = await startPeerDevice('127.215.0.1');
    ca = await makePeerCa();
    c = new TestWsmanClient({
      host: d.host,
      port: d.tlsPort,
      user: 'admin',
      password: MEBX_PASSWORD,
      psk: { pid: d.pid, pps: d.pps },
    });
  });
  after(async () => {
    c.close();
    await d.stop();
  });

  it('1. Gets AMT_GeneralSettings and AMT_SetupAndConfigurationService (In), relating replies to requests', async () => {
    const request = amt.GeneralSettings.Get();
    const gs = await c.post(request);
    assert.equal(gs.status, 200);
    realm = at(gs, 'AMT_GeneralSettings', 'DigestRealm');
    assert.match(realm, /^Digest:[0-9A-F]{32}$/);
    assert.equal(text(replyHeader(gs.body).RelatesTo), /<a:MessageID>([^<]*)</.exec(request)?.[1]);
    const sc = await c.post(amt.SetupAndConfigurationService.Get());
    assert.equal(at(sc, 'AMT_SetupAndConfigurationService', 'ProvisioningState'), '1');
  });

  it('1. Enumerates and Pulls CIM_SoftwareIdentity: the AMT instance says 6.2.0', async () => {
    const e = await c.post(cim.SoftwareIdentity.Enumerate());
    const ctx = at(e, 'EnumerateResponse', 'EnumerationContext');
    assert.notEqual(ctx, '');
    const p = await c.post(cim.SoftwareIdentity.Pull(ctx));
    const items = (replyBody(p.body).PullResponse as { Items: { CIM_SoftwareIdentity: Record<string, string>[] } })
      .Items.CIM_SoftwareIdentity;
    assert.equal(items.find((i) => i.InstanceID === 'AMT')?.VersionString, '6.2.0');
    assert.ok('EndOfSequence' in (replyBody(p.body).PullResponse as object));
  });

  it('kept one nonce for every call so far, with a rising nc, on one kept-alive TLS-PSK connection', () => {
    // 1 challenge + 4 authenticated calls: a second 401 would mean a nonce was refused.
    assert.equal(c.requests, 5);
    // The 401 closes its connection (as AMT does); every authenticated call then shares one.
    assert.equal(c.connections, 2);
  });

  it('answers an IPS class this AMT version lacks with a WS-Management fault, not silence', async () => {
    const r = await c.post(ips.HostBasedSetupService.Get());
    assert.equal(r.status, 400);
    assert.match(text(replyHeader(r.body).Action), /\/fault$/);
    assert.match(r.body, /DestinationUnreachable/);
  });

  it('2. SetAdminAclEntryEx with base64 of MD5(user:realm:password): 0', async () => {
    const ha1 = createHash('md5').update(`${ADMIN_USER}:${realm}:${ADMIN_PASSWORD}`).digest('base64');
    assert.equal(
      returnValue(await c.post(amt.AuthorizationService.SetAdminACLEntryEx(ADMIN_USER, ha1)), 'SetAdminAclEntryEx'),
      0,
    );
  });

  it('3. SetMEBxPassword: 2054 for a weak password, 0 for a strong one', async () => {
    assert.equal(
      returnValue(await c.post(amt.SetupAndConfigurationService.SetMEBXPassword('weak')), 'SetMEBxPassword'),
      2054,
    );
    assert.equal(
      returnValue(await c.post(amt.SetupAndConfigurationService.SetMEBXPassword('N3w-MEBx!')), 'SetMEBxPassword'),
      0,
    );
  });

  it('4. GetLowAccuracyTimeSynch then SetHighAccuracyTimeSynch with its Ta0: 0', async () => {
    const low = await c.post(amt.TimeSynchronizationService.GetLowAccuracyTimeSynch());
    assert.equal(returnValue(low, 'GetLowAccuracyTimeSynch'), 0);
    const ta0 = Number(at(low, 'GetLowAccuracyTimeSynch_OUTPUT', 'Ta0'));
    assert.ok(Math.abs(ta0 - Date.now() / 1000) < 60);
    const now = Math.floor(Date.now() / 1000);
    const high = await c.post(amt.TimeSynchronizationService.SetHighAccuracyTimeSynch(ta0, now, now));
    assert.equal(returnValue(high, 'SetHighAccuracyTimeSynch'), 0);
  });

  it('5. Puts AMT_GeneralSettings with a new host and domain name', async () => {
    const current = replyBody((await c.post(amt.GeneralSettings.Get())).body)
      .AMT_GeneralSettings as AMT.Models.GeneralSettings;
    const put = await c.post(amt.GeneralSettings.Put({ ...current, HostName: 'pc-0042', DomainName: 'corp.example' }));
    assert.equal(put.status, 200, put.body);
    assert.equal(text(replyHeader(put.body).Action), 'http://schemas.xmlsoap.org/ws/2004/09/transfer/PutResponse');
    const after = await c.post(amt.GeneralSettings.Get());
    assert.equal(at(after, 'AMT_GeneralSettings', 'HostName'), 'pc-0042');
  });

  let certHandle = '';
  it('6. GenerateKeyPair, GeneratePKCS10RequestEx, AddCertificate: the device key is certified by our CA', async () => {
    const gen = await c.post(amt.PublicKeyManagementService.GenerateKeyPair({ KeyAlgorithm: 0, KeyLength: 2048 }));
    assert.equal(returnValue(gen, 'GenerateKeyPair'), 0);
    const keyId = at(gen, 'GenerateKeyPair_OUTPUT', 'KeyPair', 'ReferenceParameters', 'SelectorSet', 'Selector');
    assert.notEqual(keyId, '');
    const e = await c.post(amt.PublicPrivateKeyPair.Enumerate());
    const p = await c.post(amt.PublicPrivateKeyPair.Pull(at(e, 'EnumerateResponse', 'EnumerationContext')));
    const derKey = at(p, 'PullResponse', 'Items', 'AMT_PublicPrivateKeyPair', 'DERKey');
    const csr = await c.post(
      amt.PublicKeyManagementService.GeneratePKCS10RequestEx({
        KeyPair: `<a:Address>/wsman</a:Address><a:ReferenceParameters><w:ResourceURI>http://intel.com/wbem/wscim/1/amt-schema/1/AMT_PublicPrivateKeyPair</w:ResourceURI><w:SelectorSet><w:Selector Name="InstanceID">${keyId}</w:Selector></w:SelectorSet></a:ReferenceParameters>`,
        SigningAlgorithm: 1,
        NullSignedCertificateRequest: nullSignedRequest(derKey),
      }),
    );
    assert.equal(returnValue(csr, 'GeneratePKCS10RequestEx'), 0);
    const blob = await issueForRequest(ca, at(csr, 'GeneratePKCS10RequestEx_OUTPUT', 'SignedCertificateRequest'));
    const add = await c.post(amt.PublicKeyManagementService.AddCertificate({ CertificateBlob: blob }));
    assert.equal(returnValue(add, 'AddCertificate'), 0);
    certHandle = at(
      add,
      'AddCertificate_OUTPUT',
      'CreatedCertificate',
      'ReferenceParameters',
      'SelectorSet',
      'Selector',
    );
    assert.notEqual(certHandle, '');
  });

  it('6. Creates AMT_TLSCredentialContext and Puts AMT_TLSSettingData Enabled', async () => {
    const create = await c.post(amt.TLSCredentialContext.Create(certHandle));
    assert.equal(create.status, 200, create.body);
    assert.equal(
      text(replyHeader(create.body).Action),
      'http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse',
    );
    const e = await c.post(amt.TLSSettingData.Enumerate());
    const p = await c.post(amt.TLSSettingData.Pull(at(e, 'EnumerateResponse', 'EnumerationContext')));
    const all = (replyBody(p.body).PullResponse as { Items: { AMT_TLSSettingData: AMT.Models.TLSSettingData[] } }).Items
      .AMT_TLSSettingData;
    const remote = all.find((s) => s.InstanceID === 'Intel(r) AMT 802.3 TLS Settings');
    assert.ok(remote);
    const put = await c.post(amt.TLSSettingData.Put({ ...remote, Enabled: true, AcceptNonSecureConnections: false }));
    assert.equal(put.status, 200, put.body);
  });

  it('7. SetTLSPSK with the new PID and PPS: 0', async () => {
    const r = await c.post(
      method(AMT.Classes.SETUP_AND_CONFIGURATION_SERVICE, 'SetTLSPSK', { PID: newPid, PPS: newPps }),
    );
    assert.equal(returnValue(r, 'SetTLSPSK'), 0);
  });

  it('8. CommitChanges: 0, and the device is Post', async () => {
    const r = await c.post(amt.SetupAndConfigurationService.CommitChanges());
    assert.equal(returnValue(r, 'CommitChanges'), 0);
    assert.equal(d.device.state, 'Post');
    c.close();
  });

  it('9. over TLS with the certificate our CA issued, as the new admin: ProvisioningState 2, new names', async () => {
    const post = new TestWsmanClient({
      host: d.host,
      port: d.tlsPort,
      user: ADMIN_USER,
      password: ADMIN_PASSWORD,
      tls: { ca: ca.pem },
    });
    try {
      const sc = await post.post(amt.SetupAndConfigurationService.Get());
      assert.equal(sc.status, 200, sc.body);
      assert.equal(at(sc, 'AMT_SetupAndConfigurationService', 'ProvisioningState'), '2');
      const gs = await post.post(amt.GeneralSettings.Get());
      assert.equal(at(gs, 'AMT_GeneralSettings', 'HostName'), 'pc-0042');
      assert.equal(at(gs, 'AMT_GeneralSettings', 'DomainName'), 'corp.example');
      const uuid = await post.post(amt.SetupAndConfigurationService.GetUuid());
      assert.equal(returnValue(uuid, 'GetUuid'), 0);
      assert.equal(Buffer.from(at(uuid, 'GetUuid_OUTPUT', 'UUID'), 'base64').length, 16);
    } finally {
      post.close();
    }
    // The old PSK is gone: the device keeps only the one SetTLSPSK gave it.
    assert.equal(d.device.currentPid, newPid);
  });

  it('refuses the old admin credentials after commit', async () => {
    const old = new TestWsmanClient({
      host: d.host,
      port: d.tlsPort,
      user: 'admin',
      password: MEBX_PASSWORD,
      tls: { ca: ca.pem },
    });
    try {
      assert.equal((await old.post(amt.GeneralSettings.Get())).status, 401);
    } finally {
      old.close();
    }
  });
});
