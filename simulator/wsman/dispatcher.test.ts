import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AMT, CIM } from '@device-management-toolkit/wsman-messages';
import { envelopeXml, faultSubcode, harness, header, text } from './test-harness.ts';
import { childrenNamed, path } from './xml.ts';

const GS = 'http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings';
const SW = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_SoftwareIdentity';
const GET = 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Get';
const ENUMERATE = 'http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate';
const PULL = 'http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull';

describe('WS-Man dispatch: what clients differ in', () => {
  it('answers a default-namespace envelope (wsman-messages) and a prefixed one alike', async () => {
    const h = harness();
    const a = await h.call(new AMT.Messages().GeneralSettings.Get());
    const b = await h.call(envelopeXml(GET, GS, ''));
    assert.equal(text(a, 'DigestRealm'), text(b, 'DigestRealm'));
  });

  it('ignores the To value (relative or absolute) and accepts an empty MessageID', async () => {
    const h = harness();
    const xml = envelopeXml(GET, GS, '')
      .replace('<a:To>/wsman</a:To>', '<a:To>http://192.168.0.9:16992/wsman</a:To>')
      .replace('<a:MessageID>uuid:7</a:MessageID>', '<a:MessageID/>');
    const r = await h.call(xml);
    assert.equal(r.status, 200);
    assert.equal(header(r, 'RelatesTo'), '');
  });

  it('relates the reply to the request MessageID and gives its own AMT-style MessageID', async () => {
    const h = harness();
    const r1 = await h.call(envelopeXml(GET, GS, ''));
    const r2 = await h.call(envelopeXml(GET, GS, ''));
    assert.equal(header(r1, 'RelatesTo'), 'uuid:7');
    assert.match(header(r1, 'MessageID') ?? '', /^uuid:00000000-8086-8086-8086-[0-9A-F]{12}$/);
    assert.notEqual(header(r1, 'MessageID'), header(r2, 'MessageID'));
    assert.equal(header(r1, 'ResourceURI'), GS);
  });

  it('tolerates white space around the Action and ResourceURI values', async () => {
    const h = harness();
    const r = await h.call(envelopeXml(`\n   ${GET}  `, ` ${GS}\n`, ''));
    assert.equal(r.status, 200);
  });
});

describe('WS-Man faults', () => {
  it('answers an unknown ResourceURI with wsa:DestinationUnreachable, HTTP 400, addressing fault Action', async () => {
    const h = harness();
    const r = await h.call(envelopeXml(GET, 'http://intel.com/wbem/wscim/1/amt-schema/1/AMT_NoSuchThing', ''));
    assert.equal(r.status, 400);
    assert.equal(faultSubcode(r), 'b:DestinationUnreachable');
    assert.equal(header(r, 'Action'), 'http://schemas.xmlsoap.org/ws/2004/08/addressing/fault');
    assert.equal(path(r.doc, 'Body', 'Fault', 'Code', 'Value')?.text, 'a:Sender');
    assert.ok(r.xml.includes('xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing"'));
    assert.equal(r.closeSession, true);
  });

  it('answers an action the class does not support with wsa:ActionNotSupported', async () => {
    const h = harness();
    const r1 = await h.call(envelopeXml('http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete', GS, ''));
    assert.equal(faultSubcode(r1), 'b:ActionNotSupported');
    const r2 = await h.call(envelopeXml(`${GS}/Reboot`, GS, '<h:Reboot_INPUT xmlns:h="x"/>'));
    assert.equal(faultSubcode(r2), 'b:ActionNotSupported');
  });

  it('answers a missing Action with wsa:MessageInformationHeaderRequired', async () => {
    const h = harness();
    const r = await h.call(envelopeXml('', GS, ''));
    assert.equal(faultSubcode(r), 'b:MessageInformationHeaderRequired');
  });

  it('answers a method body of the wrong element with wsman:SchemaValidationError and the WS-Man fault Action', async () => {
    const h = harness();
    const uri = 'http://intel.com/wbem/wscim/1/amt-schema/1/AMT_SetupAndConfigurationService';
    const r = await h.call(envelopeXml(`${uri}/CommitChanges`, uri, '<h:Something_INPUT xmlns:h="x"/>'));
    assert.equal(r.status, 400);
    assert.equal(faultSubcode(r), 'c:SchemaValidationError');
    assert.equal(header(r, 'Action'), 'http://schemas.dmtf.org/wbem/wsman/1/wsman/fault');
    assert.ok(r.xml.includes('xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"'));
  });

  it('accepts a parameterless method with an empty Body', async () => {
    const h = harness();
    const uri = 'http://intel.com/wbem/wscim/1/amt-schema/1/AMT_SetupAndConfigurationService';
    const r = await h.call(envelopeXml(`${uri}/GetUuid`, uri, ''));
    assert.equal(r.status, 200);
    assert.equal(header(r, 'Action'), `${uri}/GetUuidResponse`);
  });
});

describe('WS-Enumeration', () => {
  it('pages with MaxElements, returns a context until the last page, then EndOfSequence', async () => {
    const h = harness();
    const e = await h.call(
      envelopeXml(ENUMERATE, SW, '<Enumerate xmlns="http://schemas.xmlsoap.org/ws/2004/09/enumeration"/>'),
    );
    const ctx = text(e, 'EnumerationContext') ?? '';
    assert.match(ctx, /^[0-9A-F]{8}-0000-0000-0000-000000000000$/);
    const pull = (max?: number): string =>
      envelopeXml(
        PULL,
        SW,
        `<Pull xmlns="http://schemas.xmlsoap.org/ws/2004/09/enumeration"><EnumerationContext>${ctx}</EnumerationContext>${max === undefined ? '' : `<MaxElements>${max}</MaxElements>`}</Pull>`,
      );
    const seen: string[] = [];
    // Without MaxElements a Pull returns one item (WS-Enumeration's default).
    const first = await h.call(pull());
    assert.equal(childrenNamed(path(first.body, 'Items'), 'CIM_SoftwareIdentity').length, 1);
    assert.equal(text(first, 'EnumerationContext'), ctx);
    seen.push(path(first.body, 'Items', 'CIM_SoftwareIdentity', 'InstanceID')?.text ?? '');
    for (;;) {
      const r = await h.call(pull(4));
      for (const i of childrenNamed(path(r.body, 'Items'), 'CIM_SoftwareIdentity')) {
        seen.push(path(i, 'InstanceID')?.text ?? '');
      }
      if (path(r.body, 'EndOfSequence') !== undefined) {
        assert.equal(path(r.body, 'EnumerationContext'), undefined);
        break;
      }
    }
    assert.equal(seen.length, 11);
    assert.ok(seen.includes('AMT'));
    const after = await h.call(pull(1));
    assert.equal(faultSubcode(after), 'g:InvalidEnumerationContext');
    assert.equal(header(after, 'Action'), 'http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault');
  });

  it('returns the items in the EnumerateResponse when asked for an optimized enumeration', async () => {
    const h = harness();
    const r = await h.call(
      envelopeXml(
        ENUMERATE,
        SW,
        '<Enumerate xmlns="http://schemas.xmlsoap.org/ws/2004/09/enumeration"><w:OptimizeEnumeration/><w:MaxElements>50</w:MaxElements></Enumerate>',
      ),
    );
    assert.equal(childrenNamed(path(r.body, 'Items'), 'CIM_SoftwareIdentity').length, 11);
    assert.ok(path(r.body, 'EndOfSequence'));
  });

  it('refuses a context opened for another class', async () => {
    const h = harness();
    const e = await h.call(new CIM.Messages().SoftwareIdentity.Enumerate());
    const ctx = text(e, 'EnumerationContext') ?? '';
    const r = await h.call(new AMT.Messages().GeneralSettings.Pull(ctx));
    assert.equal(faultSubcode(r), 'g:InvalidEnumerationContext');
  });
});

describe('Identify', () => {
  for (const ns of [
    'http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd',
    'http://schemas.dmtf.org/wbem/wsman/1/wsmanidentity.xsd',
  ]) {
    it(`answers wsmid:Identify in ${ns.includes('identity/1') ? 'the DMTF' : 'the older'} namespace without an Action`, async () => {
      const h = harness();
      const r = await h.call(
        `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsmid="${ns}"><s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>`,
      );
      assert.equal(r.status, 200);
      assert.equal(r.body?.name, 'IdentifyResponse');
      assert.equal(text(r, 'ProtocolVersion'), 'http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd');
      assert.equal(text(r, 'ProductVendor'), 'Intel Corporation');
      assert.equal(text(r, 'ProductVersion'), 'AMT 6.2');
      assert.equal(text(r, 'DASHVersion'), '1.0.0');
      assert.ok(r.xml.includes('xmlns:b="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"'));
    });
  }
});
