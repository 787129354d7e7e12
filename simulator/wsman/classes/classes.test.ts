import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { AMT, CIM } from '@device-management-toolkit/wsman-messages';
import { generatePid, generatePps } from '../../../src/psk/generate.ts';
import { PtStatus } from '../../device/pt-status.ts';
import { csrSignatureAlgorithm, issueFromCsr, makeCa, nullSignedCsr, verifyCsr } from '../../device/test-pki.ts';
import { uuidToBytes } from '../../hello/uuid.ts';
import {
  faultSubcode,
  harness,
  header,
  methodXml,
  returnValue,
  text,
  TEST_MEBX,
  TEST_UUID,
  type Harness,
  type Reply,
} from '../test-harness.ts';
import { childrenNamed, path } from '../xml.ts';

/**
 * One describe per WS-Management class the device serves; every request is built by
 * @device-management-toolkit/wsman-messages (Intel's own builder) unless it has no builder there
 * (SetTLSPSK, PartialUnprovision, ExtendProvisioningPeriod, GetAdminAclEntry).
 */
const amt = (): AMT.Messages => new AMT.Messages();
const cim = (): CIM.Messages => new CIM.Messages();

async function enumerateAll(h: Harness, enumerate: string, pull: (ctx: string) => string): Promise<Reply> {
  const e = await h.call(enumerate);
  assert.equal(e.status, 200);
  const ctx = text(e, 'EnumerationContext');
  assert.ok(ctx);
  return h.call(pull(ctx));
}

function items(reply: Reply, className: string) {
  return childrenNamed(path(reply.body, 'Items'), className);
}

const ha1Bytes = (user: string, realm: string, pass: string): Buffer =>
  createHash('md5').update(`${user}:${realm}:${pass}`).digest();

describe('AMT_GeneralSettings', () => {
  it('answers Get with the digest realm, names and the InstanceID', async () => {
    const h = harness({ hostName: 'pc1', domainName: 'corp.example' });
    const r = await h.call(amt().GeneralSettings.Get());
    assert.equal(r.status, 200);
    assert.equal(header(r, 'Action'), 'http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse');
    assert.equal(header(r, 'RelatesTo'), '0');
    assert.equal(text(r, 'DigestRealm'), h.model.digestRealm);
    assert.match(h.model.digestRealm, /^Digest:[0-9A-F]{32}$/);
    assert.equal(text(r, 'HostName'), 'pc1');
    assert.equal(text(r, 'DomainName'), 'corp.example');
    assert.equal(text(r, 'InstanceID'), 'Intel(r) AMT: General Settings');
  });

  it('takes a Put of HostName and DomainName as pending values until CommitChanges', async () => {
    const h = harness();
    const put = await h.call(
      amt().GeneralSettings.Put({
        InstanceID: 'Intel(r) AMT: General Settings',
        HostName: 'new-host',
        DomainName: 'x.example',
      }),
    );
    assert.equal(put.status, 200);
    assert.equal(text(put, 'HostName'), 'new-host');
    assert.equal(h.model.committed.hostName, '');
    assert.equal(h.model.working.hostName, 'new-host');
    h.model.commitChanges();
    assert.equal(h.model.committed.hostName, 'new-host');
    assert.equal(h.model.committed.domainName, 'x.example');
  });

  it('refuses a host name that is not a DNS label with wsman:InvalidParameter', async () => {
    const h = harness();
    const r = await h.call(amt().GeneralSettings.Put({ HostName: 'bad_name!' }));
    assert.equal(r.status, 400);
    assert.equal(faultSubcode(r), 'c:InvalidParameter');
    assert.equal(h.model.working.hostName, '');
  });

  it('refuses a selector naming another instance with wsman:InvalidSelectors', async () => {
    const h = harness();
    const r = await h.call(amt().GeneralSettings.Get({ name: 'InstanceID', value: 'nope' }));
    assert.equal(r.status, 400);
    assert.equal(faultSubcode(r), 'c:InvalidSelectors');
  });
});

describe('AMT_SetupAndConfigurationService', () => {
  it('reports ProvisioningState 1 and mode 1 while in setup', async () => {
    const h = harness();
    const r = await h.call(amt().SetupAndConfigurationService.Get());
    assert.equal(text(r, 'ProvisioningState'), '1');
    assert.equal(text(r, 'ProvisioningMode'), '1');
  });

  it('answers GetUuid with base64 of the 16 UUID bytes in SMBIOS order', async () => {
    const h = harness();
    const r = await h.call(amt().SetupAndConfigurationService.GetUuid());
    assert.equal(returnValue(r), 0);
    assert.equal(
      header(r, 'Action'),
      'http://intel.com/wbem/wscim/1/amt-schema/1/AMT_SetupAndConfigurationService/GetUuidResponse',
    );
    assert.deepEqual(Buffer.from(text(r, 'UUID') ?? '', 'base64'), uuidToBytes(TEST_UUID));
  });

  it('applies the strong-password rule to SetMEBxPassword (2054 otherwise)', async () => {
    const h = harness();
    for (const weak of [
      'short1!A',
      'alllowercase1!',
      'NoDigits!!',
      'NoSpecial123',
      'Under_score1A',
      'Colon:ed1A',
      'x'.repeat(33) + 'A1!',
    ]) {
      const r = await h.call(amt().SetupAndConfigurationService.SetMEBXPassword(weak));
      // 'short1!A' has 8 characters and every class: it is strong.
      assert.equal(returnValue(r), weak === 'short1!A' ? 0 : PtStatus.INVALID_PASSWORD, weak);
    }
    assert.equal(returnValue(await h.call(amt().SetupAndConfigurationService.SetMEBXPassword('N3w-Passw0rd'))), 0);
    assert.equal(h.model.working.mebxPassword.reveal(), 'N3w-Passw0rd');
    assert.equal(h.model.committed.mebxPassword.reveal(), TEST_MEBX);
  });

  it('checks SetTLSPSK formats: 42 for a bad PID, 43 for a bad PPS, text or base64 accepted', async () => {
    const h = harness();
    const pid = generatePid();
    const pps = generatePps();
    const call = (p: string, s: string) =>
      h.call(methodXml('AMT_SetupAndConfigurationService', 'SetTLSPSK', { PID: p, PPS: s }));
    const badPid = pid.slice(0, 7) + (pid[7] === '0' ? '1' : '0');
    assert.equal(returnValue(await call(badPid, pps)), PtStatus.INVALID_PID_FORMAT);
    assert.equal(
      returnValue(await call(pid, pps.slice(0, 31) + (pps[31] === '0' ? '1' : '0'))),
      PtStatus.INVALID_PPS_FORMAT,
    );
    assert.equal(returnValue(await call(`${pid.slice(0, 4)}-${pid.slice(4)}`, pps)), PtStatus.INVALID_PID_FORMAT);
    assert.equal(returnValue(await call(pid, pps)), 0);
    assert.equal(h.model.working.newPsk?.pid, pid);
    const b64 = (s: string) => Buffer.from(s, 'ascii').toString('base64');
    assert.equal(returnValue(await call(b64(pid), b64(pps))), 0);
    assert.equal(h.model.working.newPsk?.pps.reveal(), pps);
  });

  it('commits: In -> Post, the original PSK deleted, the SetTLSPSK one kept, the session ended', async () => {
    const h = harness();
    const pid = generatePid();
    const pps = generatePps();
    await h.call(methodXml('AMT_SetupAndConfigurationService', 'SetTLSPSK', { PID: pid, PPS: pps }));
    const r = await h.call(amt().SetupAndConfigurationService.CommitChanges());
    assert.equal(returnValue(r), 0);
    assert.equal(r.closeSession, true);
    assert.equal(h.model.stateName, 'Post');
    assert.equal(h.model.committed.psk?.pid, pid);
    assert.ok(h.events.some((e) => e.type === 'provisioned'));
    const get = await h.call(amt().SetupAndConfigurationService.Get());
    assert.equal(text(get, 'ProvisioningState'), '2');
  });

  it('refuses SetMEBxPassword once Post with NOT_PERMITTED (16) and CommitChanges in Pre with 32', async () => {
    const h = harness();
    h.model.commitChanges();
    assert.equal(returnValue(await h.call(amt().SetupAndConfigurationService.SetMEBXPassword('N3w-Passw0rd'))), 16);
    const pre = harness({}, Date.now, false);
    assert.equal(returnValue(await pre.call(amt().SetupAndConfigurationService.CommitChanges())), 32);
  });

  it('partially unprovisions Post -> In with the SetTLSPSK PSK, and refuses it without one (2057)', async () => {
    const h = harness();
    const pid = generatePid();
    await h.call(methodXml('AMT_SetupAndConfigurationService', 'SetTLSPSK', { PID: pid, PPS: generatePps() }));
    h.model.commitChanges();
    const r = await h.call(methodXml('AMT_SetupAndConfigurationService', 'PartialUnprovision', {}));
    assert.equal(returnValue(r), 0);
    assert.equal(h.model.stateName, 'In');
    assert.equal(h.model.committed.psk?.pid, pid);
    const bare = harness();
    bare.model.commitChanges();
    const r2 = await bare.call(methodXml('AMT_SetupAndConfigurationService', 'PartialUnprovision', {}));
    assert.equal(returnValue(r2), PtStatus.DATA_MISSING);
    assert.equal(
      returnValue(await h.call(methodXml('AMT_SetupAndConfigurationService', 'PartialUnprovision', {}))),
      32,
    );
  });

  it('fully unprovisions to Pre (factory) and refuses provisioning modes other than 0 and 1', async () => {
    const h = harness({ hostName: 'pc' });
    assert.equal(
      returnValue(await h.call(amt().SetupAndConfigurationService.Unprovision(2))),
      PtStatus.INVALID_PARAMETER,
    );
    const r = await h.call(amt().SetupAndConfigurationService.Unprovision(1));
    assert.equal(returnValue(r), 0);
    assert.equal(h.model.stateName, 'Pre');
    assert.equal(h.model.committed.psk, undefined);
    assert.equal(h.model.committed.hostName, '');
    assert.equal(returnValue(await h.call(amt().SetupAndConfigurationService.Unprovision(1))), 32);
  });

  it('extends the provisioning period by 1..24 hours in setup mode only', async () => {
    let now = 1_700_000_000_000;
    const h = harness({}, () => now);
    const extend = (d: number) =>
      h.call(methodXml('AMT_SetupAndConfigurationService', 'ExtendProvisioningPeriod', { Duration: d }));
    assert.equal(returnValue(await extend(25)), 36);
    assert.equal(returnValue(await extend(0)), 36);
    now += 1000;
    assert.equal(returnValue(await extend(24)), 0);
    assert.equal(h.model.windowEndsAt, now + 24 * 3_600_000);
    h.model.commitChanges();
    assert.equal(returnValue(await extend(1)), 32);
  });
});

describe('CIM_SoftwareIdentity', () => {
  it('enumerates AMT with the AMT version and the other firmware facts', async () => {
    const h = harness({ amtVersion: '6.2.10' });
    const r = await enumerateAll(h, cim().SoftwareIdentity.Enumerate(), (c) => cim().SoftwareIdentity.Pull(c));
    const all = items(r, 'CIM_SoftwareIdentity');
    const byId = new Map(all.map((i) => [path(i, 'InstanceID')?.text, path(i, 'VersionString')?.text]));
    assert.equal(byId.get('AMT'), '6.2.10');
    for (const id of ['Flash', 'Netstack', 'AMTApps', 'Sku', 'VendorID', 'Build Number']) assert.ok(byId.has(id), id);
    assert.equal(byId.get('VendorID'), '8086');
    assert.ok(path(r.body, 'EndOfSequence'));
  });

  it('answers Get for one InstanceID', async () => {
    const h = harness();
    const r = await h.call(cim().SoftwareIdentity.Get({ name: 'InstanceID', value: 'AMT' }));
    assert.equal(text(r, 'VersionString'), '6.2.0');
  });
});

describe('AMT_AuthorizationService', () => {
  it('takes DigestPassword as base64 of the 16 MD5 bytes, pending until commit in setup mode', async () => {
    const h = harness();
    const digest = ha1Bytes('scsadmin', h.model.digestRealm, 'S3cret!pass');
    const r = await h.call(amt().AuthorizationService.SetAdminACLEntryEx('scsadmin', digest.toString('base64')));
    assert.equal(returnValue(r), 0);
    assert.equal(h.model.ha1For('scsadmin'), undefined);
    assert.ok(h.model.ha1For('admin'));
    h.model.commitChanges();
    assert.deepEqual(h.model.ha1For('scsadmin'), digest);
    assert.equal(h.model.ha1For('admin'), undefined);
  });

  it('takes DigestPassword as 32 hex digits too, at once when Post', async () => {
    const h = harness();
    h.model.commitChanges();
    const digest = ha1Bytes('ops', h.model.digestRealm, 'An0ther!pw');
    assert.equal(
      returnValue(await h.call(amt().AuthorizationService.SetAdminACLEntryEx('ops', digest.toString('hex')))),
      0,
    );
    assert.deepEqual(h.model.ha1For('ops'), digest);
    const got = await h.call(methodXml('AMT_AuthorizationService', 'GetAdminAclEntry', {}));
    assert.equal(text(got, 'Username'), 'ops');
  });

  it('refuses user names over 16 characters and digests that are not 16 bytes (36)', async () => {
    const h = harness();
    const d = Buffer.alloc(16, 1).toString('base64');
    assert.equal(
      returnValue(
        await h.call(
          methodXml('AMT_AuthorizationService', 'SetAdminAclEntryEx', { Username: 'u'.repeat(17), DigestPassword: d }),
        ),
      ),
      36,
    );
    assert.equal(
      returnValue(
        await h.call(
          methodXml('AMT_AuthorizationService', 'SetAdminAclEntryEx', { Username: 'u', DigestPassword: 'AAAA' }),
        ),
      ),
      36,
    );
  });
});

describe('AMT_TimeSynchronizationService', () => {
  it('returns Ta0 and accepts SetHighAccuracyTimeSynch with it, moving the device clock', async () => {
    let now = 1_700_000_000_000;
    const h = harness({}, () => now);
    const low = await h.call(amt().TimeSynchronizationService.GetLowAccuracyTimeSynch());
    const ta0 = Number(text(low, 'Ta0'));
    assert.equal(ta0, 1_700_000_000);
    now += 2000;
    const r = await h.call(
      amt().TimeSynchronizationService.SetHighAccuracyTimeSynch(ta0, 1_800_000_000, 1_800_000_001),
    );
    assert.equal(returnValue(r), 0);
    assert.equal(Math.floor(h.model.now() / 1000), 1_800_000_001);
  });

  it('answers 34 INVALID_TIME for a Ta0 it did not give or Tm2 before Tm1', async () => {
    const h = harness();
    const ta0 = Number(text(await h.call(amt().TimeSynchronizationService.GetLowAccuracyTimeSynch()), 'Ta0'));
    assert.equal(
      returnValue(await h.call(amt().TimeSynchronizationService.SetHighAccuracyTimeSynch(ta0 - 5, 10, 11))),
      34,
    );
    assert.equal(returnValue(await h.call(amt().TimeSynchronizationService.SetHighAccuracyTimeSynch(ta0, 11, 10))), 34);
  });
});

describe('AMT_PublicKeyManagementService, AMT_PublicPrivateKeyPair, AMT_PublicKeyCertificate', () => {
  it('generates an RSA-2048 key pair inside the device and lists its public key', async () => {
    const h = harness();
    assert.equal(
      returnValue(
        await h.call(amt().PublicKeyManagementService.GenerateKeyPair({ KeyAlgorithm: 0, KeyLength: 1024 } as never)),
      ),
      36,
    );
    const r = await h.call(amt().PublicKeyManagementService.GenerateKeyPair({ KeyAlgorithm: 0, KeyLength: 2048 }));
    assert.equal(returnValue(r), 0);
    assert.equal(
      text(r, 'KeyPair', 'ReferenceParameters', 'ResourceURI'),
      'http://intel.com/wbem/wscim/1/amt-schema/1/AMT_PublicPrivateKeyPair',
    );
    assert.equal(text(r, 'KeyPair', 'ReferenceParameters', 'SelectorSet', 'Selector'), 'Intel(r) AMT Key: Handle: 0');
    const list = await enumerateAll(h, amt().PublicPrivateKeyPair.Enumerate(), (c) =>
      amt().PublicPrivateKeyPair.Pull(c),
    );
    const keys = items(list, 'AMT_PublicPrivateKeyPair');
    assert.equal(keys.length, 1);
    const der = Buffer.from(path(keys[0], 'DERKey')?.text ?? '', 'base64');
    assert.deepEqual(der, h.model.keystore.keys.get(0)?.publicKey.export({ type: 'pkcs1', format: 'der' }));
  });

  it('signs a null-signed PKCS#10 with the device key; certificates must match a device key', async () => {
    const h = harness();
    const ca = await makeCa();
    const gen = await h.call(amt().PublicKeyManagementService.GenerateKeyPair({ KeyAlgorithm: 0, KeyLength: 2048 }));
    const keyId = text(gen, 'KeyPair', 'ReferenceParameters', 'SelectorSet', 'Selector') ?? '';
    const derKey =
      h.model.keystore.keys.get(0)?.publicKey.export({ type: 'pkcs1', format: 'der' }).toString('base64') ?? '';
    const nullSigned = await nullSignedCsr(derKey, ca.keys.privateKey);
    assert.equal(await verifyCsr(nullSigned), false);
    const keyRef = `<a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address><a:ReferenceParameters><w:ResourceURI>http://intel.com/wbem/wscim/1/amt-schema/1/AMT_PublicPrivateKeyPair</w:ResourceURI><w:SelectorSet><w:Selector Name="InstanceID">${keyId}</w:Selector></w:SelectorSet></a:ReferenceParameters>`;
    const signed = await h.call(
      amt().PublicKeyManagementService.GeneratePKCS10RequestEx({
        KeyPair: keyRef,
        SigningAlgorithm: 1,
        NullSignedCertificateRequest: nullSigned,
      }),
    );
    assert.equal(returnValue(signed), 0);
    const csr = text(signed, 'SignedCertificateRequest') ?? '';
    assert.equal(await verifyCsr(csr), true);
    assert.equal(csrSignatureAlgorithm(csr), 'SHA-256');
    // SHA1-RSA (0), and the bare InstanceID form of the reference.
    const sha1 = await h.call(
      amt().PublicKeyManagementService.GeneratePKCS10RequestEx({
        KeyPair: keyId,
        SigningAlgorithm: 0,
        NullSignedCertificateRequest: nullSigned,
      }),
    );
    assert.equal(returnValue(sha1), 0);
    assert.equal(csrSignatureAlgorithm(text(sha1, 'SignedCertificateRequest') ?? ''), 'SHA-1');

    // A certificate for an unrelated key: 2064; garbage: 2063; the right one: a reference.
    const otherCa = await makeCa('CN=other');
    assert.equal(
      returnValue(
        await h.call(
          amt().PublicKeyManagementService.AddCertificate({
            CertificateBlob: Buffer.from(otherCa.cert.rawData).toString('base64'),
          }),
        ),
      ),
      2064,
    );
    assert.equal(
      returnValue(
        await h.call(amt().PublicKeyManagementService.AddCertificate({ CertificateBlob: 'bm90IGEgY2VydA==' })),
      ),
      2063,
    );
    const certDer = await issueFromCsr(ca, csr);
    const added = await h.call(amt().PublicKeyManagementService.AddCertificate({ CertificateBlob: certDer }));
    assert.equal(returnValue(added), 0);
    assert.equal(
      text(added, 'CreatedCertificate', 'ReferenceParameters', 'SelectorSet', 'Selector'),
      'Intel(r) AMT Certificate: Handle: 0',
    );
    assert.equal(
      returnValue(await h.call(amt().PublicKeyManagementService.AddCertificate({ CertificateBlob: certDer }))),
      PtStatus.DUPLICATE,
    );
    const root = await h.call(
      amt().PublicKeyManagementService.AddTrustedRootCertificate({
        CertificateBlob: Buffer.from(ca.cert.rawData).toString('base64'),
      }),
    );
    assert.equal(returnValue(root), 0);

    const list = await enumerateAll(h, amt().PublicKeyCertificate.Enumerate(), (c) =>
      amt().PublicKeyCertificate.Pull(c),
    );
    const certs = items(list, 'AMT_PublicKeyCertificate');
    assert.equal(certs.length, 2);
    assert.equal(path(certs[0], 'TrustedRootCertficate')?.text, 'false');
    assert.equal(path(certs[1], 'TrustedRootCertficate')?.text, 'true');
    assert.equal(path(certs[1], 'Subject')?.text, 'CN=amt-scs test CA');
  });

  it('refuses a request whose public key is not the referenced device key (2062)', async () => {
    const h = harness();
    const ca = await makeCa();
    await h.call(amt().PublicKeyManagementService.GenerateKeyPair({ KeyAlgorithm: 0, KeyLength: 2048 }));
    await h.call(amt().PublicKeyManagementService.GenerateKeyPair({ KeyAlgorithm: 0, KeyLength: 2048 }));
    const key1 =
      h.model.keystore.keys.get(1)?.publicKey.export({ type: 'pkcs1', format: 'der' }).toString('base64') ?? '';
    const csr = await nullSignedCsr(key1, ca.keys.privateKey);
    const r = await h.call(
      amt().PublicKeyManagementService.GeneratePKCS10RequestEx({
        KeyPair: 'Intel(r) AMT Key: Handle: 0',
        SigningAlgorithm: 1,
        NullSignedCertificateRequest: csr,
      }),
    );
    assert.equal(returnValue(r), PtStatus.INVALID_KEY);
  });
});

describe('AMT_TLSCredentialContext and AMT_TLSSettingData', () => {
  async function withCertificate(h: Harness): Promise<string> {
    const ca = await makeCa();
    await h.call(amt().PublicKeyManagementService.GenerateKeyPair({ KeyAlgorithm: 0, KeyLength: 2048 }));
    const derKey =
      h.model.keystore.keys.get(0)?.publicKey.export({ type: 'pkcs1', format: 'der' }).toString('base64') ?? '';
    const signed = await h.call(
      amt().PublicKeyManagementService.GeneratePKCS10RequestEx({
        KeyPair: 'Intel(r) AMT Key: Handle: 0',
        SigningAlgorithm: 1,
        NullSignedCertificateRequest: await nullSignedCsr(derKey, ca.keys.privateKey),
      }),
    );
    const added = await h.call(
      amt().PublicKeyManagementService.AddCertificate({
        CertificateBlob: await issueFromCsr(ca, text(signed, 'SignedCertificateRequest') ?? ''),
      }),
    );
    return text(added, 'CreatedCertificate', 'ReferenceParameters', 'SelectorSet', 'Selector') ?? '';
  }

  it('creates one credential context for a device certificate; a second is wsman:AlreadyExists', async () => {
    const h = harness();
    const handle = await withCertificate(h);
    const r = await h.call(amt().TLSCredentialContext.Create(handle));
    assert.equal(r.status, 200);
    assert.equal(header(r, 'Action'), 'http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse');
    assert.equal(
      text(r, 'ReferenceParameters', 'ResourceURI'),
      'http://intel.com/wbem/wscim/1/amt-schema/1/AMT_TLSCredentialContext',
    );
    const again = await h.call(amt().TLSCredentialContext.Create(handle));
    assert.equal(again.status, 400);
    assert.equal(faultSubcode(again), 'c:AlreadyExists');
    const list = await enumerateAll(h, amt().TLSCredentialContext.Enumerate(), (c) =>
      amt().TLSCredentialContext.Pull(c),
    );
    const ctx = items(list, 'AMT_TLSCredentialContext');
    assert.equal(ctx.length, 1);
    assert.equal(path(ctx[0], 'ElementInContext', 'ReferenceParameters', 'SelectorSet', 'Selector')?.text, handle);
    assert.equal(h.model.committed.tlsContextCert, undefined);
  });

  it('deletes the credential context by its ElementInContext reference; a certificate in use cannot be deleted', async () => {
    const h = harness();
    const handle = await withCertificate(h);
    await h.call(amt().TLSCredentialContext.Create(handle));
    const inUse = await h.call(amt().PublicKeyCertificate.Delete({ name: 'InstanceID', value: handle }));
    assert.equal(faultSubcode(inUse), 'c:InvalidParameter');
    const ref = (id: string) =>
      ({
        ElementInContext: {
          Address: '/wsman',
          ReferenceParameters: {
            ResourceURI: 'http://intel.com/wbem/wscim/1/amt-schema/1/AMT_PublicKeyCertificate',
            SelectorSet: { Selector: { $: { Name: 'InstanceID' }, _: id } },
          },
        },
      }) as never;
    const wrong = await h.call(amt().TLSCredentialContext.Delete(ref('Intel(r) AMT Certificate: Handle: 7')));
    assert.equal(faultSubcode(wrong), 'c:InvalidSelectors');
    const del = await h.call(amt().TLSCredentialContext.Delete(ref(handle)));
    assert.equal(del.status, 200);
    assert.equal(header(del, 'Action'), 'http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse');
    assert.equal(h.model.working.tlsContextCert, undefined);
    const gone = await h.call(amt().PublicKeyCertificate.Delete({ name: 'InstanceID', value: handle }));
    assert.equal(gone.status, 200);
    assert.equal(h.model.keystore.certs.size, 0);
    const key = await h.call(
      amt().PublicPrivateKeyPair.Delete({ name: 'InstanceID', value: 'Intel(r) AMT Key: Handle: 0' }),
    );
    assert.equal(key.status, 200);
    assert.equal(h.model.keystore.keys.size, 0);
  });

  it('refuses a credential context for a certificate the device does not hold', async () => {
    const h = harness();
    const r = await h.call(amt().TLSCredentialContext.Create('Intel(r) AMT Certificate: Handle: 9'));
    assert.equal(faultSubcode(r), 'c:InvalidParameter');
  });

  it('lists both TLS setting instances and takes a Put of Enabled as pending', async () => {
    const h = harness();
    const list = await enumerateAll(h, amt().TLSSettingData.Enumerate(), (c) => amt().TLSSettingData.Pull(c));
    const ids = items(list, 'AMT_TLSSettingData').map((i) => path(i, 'InstanceID')?.text);
    assert.deepEqual(ids, ['Intel(r) AMT 802.3 TLS Settings', 'Intel(r) AMT LMS TLS Settings']);
    const put = await h.call(
      amt().TLSSettingData.Put({
        ElementName: 'Intel(r) AMT 802.3 TLS Settings',
        InstanceID: 'Intel(r) AMT 802.3 TLS Settings',
        MutualAuthentication: false,
        Enabled: true,
        AcceptNonSecureConnections: false,
      } as never),
    );
    assert.equal(put.status, 200);
    assert.equal(text(put, 'Enabled'), 'true');
    assert.equal(h.model.working.tls['802.3'].enabled, true);
    assert.equal(h.model.committed.tls['802.3'].enabled, false);
    const get = await h.call(
      amt().TLSSettingData.Get({ name: 'InstanceID', value: 'Intel(r) AMT 802.3 TLS Settings' }),
    );
    assert.equal(text(get, 'Enabled'), 'true');
    const bad = await h.call(
      amt().TLSSettingData.Put({ InstanceID: 'Intel(r) AMT LMS TLS Settings', Enabled: 'maybe' } as never),
    );
    assert.equal(faultSubcode(bad), 'c:SchemaValidationError');
  });

  it('needs a selector to tell the two TLS setting instances apart', async () => {
    const h = harness();
    const r = await h.call(amt().TLSSettingData.Get());
    assert.equal(faultSubcode(r), 'c:InvalidSelectors');
  });
});
