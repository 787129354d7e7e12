import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { isScsError } from '../errors.ts';
import { Secret } from '../secret.ts';
import { createAmtClient, type AmtClient } from './client.ts';
import { createSocketTransport } from './http/transport.ts';
import { isAmtError } from './wsman/fault.ts';
import { getGeneralSettings, putGeneralSettings } from './wsman/ops/general-settings.ts';
import { identify } from './wsman/ops/identify.ts';
import { addCertificate, generateKeyPair } from './wsman/ops/public-key.ts';
import { commitChanges, getUuid, setMEBxPassword, unprovision } from './wsman/ops/setup-and-configuration.ts';
import { enumerateSoftwareIdentity } from './wsman/ops/software-identity.ts';
import { getLowAccuracyTimeSynch } from './wsman/ops/time-synchronization.ts';
import { createTlsCredentialContext } from './wsman/ops/tls.ts';

/**
 * The client against canned replies shaped like real AMT output (prefixes a: SOAP, b:
 * addressing, c: wsman, g: class; chunked encoding), served by a plain Node http server so each
 * reply-handling rule can be hit on purpose. Digest is covered in http/transport.test.ts and
 * the whole stack against the simulator in test/e2e/amt-client.test.ts.
 */

const AMT = 'http://intel.com/wbem/wscim/1/amt-schema/1/';

interface Seen {
  action: string;
  messageId: string;
  body: string;
}

type Reply = { status?: number; xml: string } | 'hang';
type Handler = (req: Seen) => Reply;

function envelope(seen: Seen, action: string, body: string, classUri = ''): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" ' +
    'xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" ' +
    `xmlns:g="${classUri}"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To>` +
    `<b:RelatesTo>${seen.messageId}</b:RelatesTo><b:Action a:mustUnderstand="true">${action}</b:Action>` +
    '<b:MessageID>uuid:00000000-8086-8086-8086-000000000001</b:MessageID></a:Header>' +
    `<a:Body>${body}</a:Body></a:Envelope>`
  );
}

const ok = (seen: Seen, body: string, classUri = '') => ({
  xml: envelope(seen, `${seen.action}Response`, body, classUri),
});

const GENERAL_BODY =
  '<g:AMT_GeneralSettings><g:AMTNetworkEnabled>1</g:AMTNetworkEnabled>' +
  '<g:DigestRealm>Digest:A3829B3827DE4D33D4449B366831FD01</g:DigestRealm><g:DomainName></g:DomainName>' +
  '<g:ElementName>Intel(r) AMT: General Settings</g:ElementName><g:HostName>old &amp; host</g:HostName>' +
  '<g:InstanceID>Intel(r) AMT: General Settings</g:InstanceID><g:NetworkInterfaceEnabled>true</g:NetworkInterfaceEnabled></g:AMT_GeneralSettings>';

function epr(resource: string, id: string): string {
  return (
    '<b:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:Address><b:ReferenceParameters>' +
    `<c:ResourceURI>${AMT}${resource}</c:ResourceURI><c:SelectorSet><c:Selector Name="InstanceID">${id}</c:Selector></c:SelectorSet></b:ReferenceParameters>`
  );
}

describe('AMT client against canned AMT replies', () => {
  let server: http.Server;
  let port = 0;
  let handler: Handler = () => ({ status: 500, xml: '' });
  const seen: Seen[] = [];
  let client: AmtClient;

  before(async () => {
    server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        const body = Buffer.concat(parts).toString();
        const s: Seen = {
          action: /<a:Action>([^<]*)<\/a:Action>/.exec(body)?.[1] ?? 'Identify',
          messageId: /<a:MessageID>([^<]*)<\/a:MessageID>/.exec(body)?.[1] ?? '',
          body,
        };
        seen.push(s);
        const reply = handler(s);
        if (reply === 'hang') return;
        res.statusCode = reply.status ?? 200;
        res.setHeader('Content-Type', 'application/soap+xml;charset=UTF-8');
        res.write(reply.xml.slice(0, 10)); // chunked, as AMT answers
        res.end(reply.xml.slice(10));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  beforeEach(() => {
    seen.length = 0;
    client?.close();
    client = createAmtClient({
      transport: createSocketTransport({
        host: `127.0.0.1:${port}`,
        connect: () =>
          new Promise((resolve, reject) => {
            const s = net.connect(port, '127.0.0.1', () => resolve(s));
            s.once('error', reject);
          }),
      }),
      username: 'admin',
      password: new Secret('P@ssw0rd'),
      callTimeoutMs: 2_000,
    });
  });
  after(() => client.close());

  it('reads AMT_GeneralSettings and Puts it back whole with the new host name', async () => {
    handler = (s) => ok(s, GENERAL_BODY, `${AMT}AMT_GeneralSettings`);
    const settings = await client.call(getGeneralSettings());
    assert.equal(settings.digestRealm, 'Digest:A3829B3827DE4D33D4449B366831FD01');
    assert.equal(settings.hostName, 'old & host');
    const echoed = await client.call(
      putGeneralSettings(settings.instance, { hostName: 'new-host', domainName: 'example.com' }),
    );
    assert.equal(echoed?.digestRealm, settings.digestRealm);
    const put = seen[1]?.body ?? '';
    assert.match(put, /<w:Selector Name="InstanceID">Intel\(r\) AMT: General Settings<\/w:Selector>/);
    assert.match(put, /<h:HostName>new-host<\/h:HostName>/);
    assert.match(put, /<h:DomainName>example.com<\/h:DomainName>/);
    assert.match(put, /<h:AMTNetworkEnabled>1<\/h:AMTNetworkEnabled>.*<h:NetworkInterfaceEnabled>true/);
  });

  it('follows the enumeration context through several Pulls until EndOfSequence', async () => {
    const items = [
      ['Flash', '6.2.0'],
      ['AMT', '6.2.0'],
      ['Build Number', '1025'],
    ];
    let pulls = 0;
    handler = (s) => {
      if (s.action.endsWith('/Enumerate')) {
        return ok(s, '<g:EnumerateResponse><g:EnumerationContext>ctx-1</g:EnumerationContext></g:EnumerateResponse>');
      }
      const item = items[pulls++] ?? ['', ''];
      const last = pulls === items.length;
      assert.match(s.body, new RegExp(`<n:EnumerationContext>ctx-${pulls}</n:EnumerationContext>`));
      return ok(
        s,
        '<g:PullResponse><g:Items><h:CIM_SoftwareIdentity xmlns:h="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_SoftwareIdentity">' +
          `<h:InstanceID>${item[0]}</h:InstanceID><h:IsEntity>true</h:IsEntity><h:VersionString>${item[1]}</h:VersionString></h:CIM_SoftwareIdentity></g:Items>` +
          (last
            ? '<g:EndOfSequence></g:EndOfSequence>'
            : `<g:EnumerationContext>ctx-${pulls + 1}</g:EnumerationContext>`) +
          '</g:PullResponse>',
      );
    };
    const inventory = await client.call(enumerateSoftwareIdentity());
    assert.equal(inventory.amtVersion, '6.2.0');
    assert.deepEqual(
      inventory.items.map((i) => i.instanceId),
      ['Flash', 'AMT', 'Build Number'],
    );
    assert.equal(seen.length, 4);
  });

  it('returns the typed output of methods', async () => {
    handler = (s) => {
      const method = s.action.slice(s.action.lastIndexOf('/') + 1);
      const out = (inner: string) =>
        ok(s, `<g:${method}_OUTPUT>${inner}<g:ReturnValue>0</g:ReturnValue></g:${method}_OUTPUT>`);
      switch (method) {
        case 'GetUuid':
          return out(`<g:UUID>${Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex').toString('base64')}</g:UUID>`);
        case 'GetLowAccuracyTimeSynch':
          return out('<g:Ta0>1700000000</g:Ta0>');
        case 'GenerateKeyPair':
          return out(`<g:KeyPair>${epr('AMT_PublicPrivateKeyPair', 'Intel(r) AMT Key: Handle: 0')}</g:KeyPair>`);
        case 'AddCertificate':
          return out(
            `<g:CreatedCertificate>${epr('AMT_PublicKeyCertificate', 'Intel(r) AMT Certificate: Handle: 1')}</g:CreatedCertificate>`,
          );
        default:
          return out('');
      }
    };
    assert.equal((await client.call(getUuid())).uuid, '03020100-0504-0706-0809-0a0b0c0d0e0f');
    assert.equal((await client.call(getLowAccuracyTimeSynch())).ta0, 1700000000);
    assert.equal((await client.call(generateKeyPair())).instanceId, 'Intel(r) AMT Key: Handle: 0');
    assert.equal((await client.call(addCertificate('MIIB'))).instanceId, 'Intel(r) AMT Certificate: Handle: 1');
    assert.equal(await client.call(commitChanges()), 0);
  });

  it('reads the ResourceCreated reference of a Create', async () => {
    handler = (s) => ok(s, `<b:ResourceCreated>${epr('AMT_TLSCredentialContext', 'ctx')}</b:ResourceCreated>`);
    const created = await client.call(createTlsCredentialContext('Intel(r) AMT Certificate: Handle: 1'));
    assert.equal(created?.resourceUri, `${AMT}AMT_TLSCredentialContext`);
  });

  it('reads an Identify reply that has no addressing headers', async () => {
    handler = () => ({
      xml:
        '<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" ' +
        'xmlns:b="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"><a:Header></a:Header><a:Body><b:IdentifyResponse>' +
        '<b:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd</b:ProtocolVersion><b:ProductVendor>Intel Corporation</b:ProductVendor>' +
        '<b:ProductVersion>AMT 6.2</b:ProductVersion><b:SecurityProfiles><b:SecurityProfileName>http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/digest</b:SecurityProfileName></b:SecurityProfiles>' +
        '</b:IdentifyResponse></a:Body></a:Envelope>',
    });
    const id = await client.call(identify());
    assert.equal(id.productVendor, 'Intel Corporation');
    assert.equal(id.productVersion, 'AMT 6.2');
    assert.equal(id.securityProfiles.length, 1);
    assert.match(seen[0]?.body ?? '', /<wsmid:Identify\/>/);
  });

  it('rejects a non-zero ReturnValue as AmtError carrying the number, name and action', async () => {
    handler = (s) => ok(s, '<g:Unprovision_OUTPUT><g:ReturnValue>2076</g:ReturnValue></g:Unprovision_OUTPUT>');
    await assert.rejects(client.call(unprovision()), (e) => {
      assert.ok(isAmtError(e, 2076));
      assert.equal(e.status, 'BLOCKING_COMPONENT');
      assert.equal(e.action, `${AMT}AMT_SetupAndConfigurationService/Unprovision`);
      return true;
    });
  });

  it('rejects a SOAP fault sent with HTTP 400 as SCS_WSMAN_FAULT', async () => {
    handler = (s) => ({
      status: 400,
      xml: envelope(
        s,
        'http://schemas.dmtf.org/wbem/wsman/1/wsman/fault',
        '<a:Fault><a:Code><a:Value>a:Sender</a:Value><a:Subcode><a:Value>b:DestinationUnreachable</a:Value></a:Subcode></a:Code>' +
          '<a:Reason><a:Text xml:lang="en-US">No route can be determined to reach the destination role defined by the WS-Addressing To.</a:Text></a:Reason></a:Fault>',
      ),
    });
    await assert.rejects(
      client.call(getGeneralSettings()),
      (e) => isScsError(e, 'SCS_WSMAN_FAULT') && e.details.subcode === 'b:DestinationUnreachable',
    );
  });

  it('never puts the password it sends into an error', async () => {
    handler = (s) => ok(s, '<g:SetMEBxPassword_OUTPUT><g:ReturnValue>2054</g:ReturnValue></g:SetMEBxPassword_OUTPUT>');
    await assert.rejects(client.call(setMEBxPassword(new Secret('Weak-But-Secret1'))), (e) => {
      assert.ok(isAmtError(e, 2054));
      assert.ok(!JSON.stringify({ m: e.message, d: e.details }).includes('Weak-But-Secret1'));
      return true;
    });
  });

  it('refuses a reply that answers another message or another action', async () => {
    handler = (s) => ({ xml: envelope({ ...s, messageId: 'uuid:someone-else' }, `${s.action}Response`, GENERAL_BODY) });
    await assert.rejects(
      client.call(getGeneralSettings()),
      (e) => isScsError(e, 'SCS_WSMAN_MALFORMED_REPLY') && /RelatesTo/.test(e.message),
    );
    handler = (s) => ({ xml: envelope(s, 'http://schemas.xmlsoap.org/ws/2004/09/transfer/PutResponse', GENERAL_BODY) });
    await assert.rejects(
      client.call(getGeneralSettings()),
      (e) => isScsError(e, 'SCS_WSMAN_MALFORMED_REPLY') && /expected .*GetResponse/.test(e.message),
    );
  });

  it('refuses a reply with a DOCTYPE and a reply missing what the operation needs', async () => {
    handler = (s) => ({
      xml:
        '<!DOCTYPE x [<!ENTITY e "e">]>' +
        ok(s, GENERAL_BODY).xml.replace('<?xml version="1.0" encoding="UTF-8"?>', ''),
    });
    await assert.rejects(client.call(getGeneralSettings()), (e) => isScsError(e, 'SCS_WSMAN_MALFORMED_REPLY'));
    handler = (s) => ok(s, '<g:AMT_GeneralSettings><g:HostName>h</g:HostName></g:AMT_GeneralSettings>');
    await assert.rejects(
      client.call(getGeneralSettings()),
      (e) => isScsError(e, 'SCS_WSMAN_MALFORMED_REPLY') && /DigestRealm/.test(e.message),
    );
  });

  it('reports other HTTP statuses as SCS_AMT_HTTP', async () => {
    handler = () => ({ status: 404, xml: 'not here' });
    await assert.rejects(
      client.call(getGeneralSettings()),
      (e) => isScsError(e, 'SCS_AMT_HTTP') && e.details.status === 404,
    );
  });

  it('gives every call its own deadline (SCS_AMT_TIMEOUT) and honours the caller signal', async () => {
    const quick = createAmtClient({
      transport: createSocketTransport({
        host: `127.0.0.1:${port}`,
        connect: () =>
          new Promise((resolve, reject) => {
            const s = net.connect(port, '127.0.0.1', () => resolve(s));
            s.once('error', reject);
          }),
      }),
      username: 'admin',
      password: new Secret('P@ssw0rd'),
      callTimeoutMs: 150,
    });
    try {
      handler = () => 'hang';
      await assert.rejects(
        quick.call(getGeneralSettings()),
        (e) => isScsError(e, 'SCS_AMT_TIMEOUT') && e.details.operation === 'AMT_GeneralSettings.Get',
      );
      const controller = new AbortController();
      const pending = quick.call(getGeneralSettings(), { signal: controller.signal });
      controller.abort(new Error('job cancelled'));
      await assert.rejects(pending, /job cancelled/);
      handler = (s) => ok(s, GENERAL_BODY);
      assert.equal((await quick.call(getGeneralSettings())).hostName, 'old & host');
    } finally {
      quick.close();
    }
  });
});
