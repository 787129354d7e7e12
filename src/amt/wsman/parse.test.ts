import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isScsError } from '../../errors.ts';
import { AmtError, checkReturnValue, faultError, isAmtError, ptStatusName, readFault } from './fault.ts';
import { readInstance, putBody, property } from './operation.ts';
import { child, children, decodeXml, parseEpr, parseWsman, selectorValue, text } from './parse.ts';

const envelope = (body: string, header = '') =>
  '<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" ' +
  'xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" ' +
  `xmlns:g="urn:g"><a:Header>${header}</a:Header><a:Body>${body}</a:Body></a:Envelope>`;

describe('reply parser', () => {
  it('matches local names whatever the prefixes, and reads the addressing headers', () => {
    const r = parseWsman(
      envelope(
        '<g:Thing><g:Name>x</g:Name></g:Thing>',
        '<b:RelatesTo>uuid:1</b:RelatesTo><b:Action a:mustUnderstand="true">urn:act</b:Action><b:MessageID>uuid:2</b:MessageID>',
      ),
    );
    assert.equal(r.relatesTo, 'uuid:1');
    assert.equal(r.action, 'urn:act');
    assert.equal(r.messageId, 'uuid:2');
    assert.equal(text(child(child(r.body, 'Thing'), 'Name')), 'x');
  });

  it('accepts a default namespace instead of prefixes', () => {
    const r = parseWsman('<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Body><X>1</X></Body></Envelope>');
    assert.equal(text(child(r.body, 'X')), '1');
  });

  it('decodes the five XML escapes and character references, and nothing else', () => {
    assert.equal(
      decodeXml('a &amp; b &lt;c&gt; &quot;&apos; &#65;&#x42; &nbsp; &bogus;'),
      'a & b <c> "\' AB &nbsp; &bogus;',
    );
    const r = parseWsman(envelope('<g:H>x &amp;amp; y&#x20;z</g:H>'));
    assert.equal(text(child(r.body, 'H')), 'x &amp; y z');
  });

  it('keeps leading zeros and numbers as text', () => {
    const r = parseWsman(envelope('<g:H>007</g:H><g:N>1e3</g:N>'));
    assert.equal(text(child(r.body, 'H')), '007');
    assert.equal(text(child(r.body, 'N')), '1e3');
  });

  it('refuses a DOCTYPE (entity expansion, external entities) before parsing', () => {
    const bomb =
      '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxxxx"><!ENTITY y "&x;&x;&x;&x;&x;&x;&x;&x;">]>' +
      '<a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope"><a:Body>&y;</a:Body></a:Envelope>';
    const xxe = '<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Envelope><Body>&xxe;</Body></Envelope>';
    for (const doc of [bomb, xxe, '<!doctype html><Envelope><Body/></Envelope>']) {
      assert.throws(
        () => parseWsman(doc),
        (e) => isScsError(e, 'SCS_WSMAN_MALFORMED_REPLY') && /DOCTYPE/.test(e.message),
      );
    }
  });

  it('bounds the reply size', () => {
    assert.throws(
      () => parseWsman(envelope('<g:X>' + 'a'.repeat(2000) + '</g:X>'), 1000),
      (e) => isScsError(e, 'SCS_WSMAN_MALFORMED_REPLY') && /over the 1000-byte bound/.test(e.message),
    );
  });

  it('refuses a document that is not a SOAP envelope with a body', () => {
    assert.throws(
      () => parseWsman('<html><body>hi</body></html>'),
      (e) => isScsError(e, 'SCS_WSMAN_MALFORMED_REPLY'),
    );
    assert.throws(
      () => parseWsman('not xml at all'),
      (e) => isScsError(e, 'SCS_WSMAN_MALFORMED_REPLY'),
    );
  });

  it('reads an endpoint reference with its selectors', () => {
    const r = parseWsman(
      envelope(
        '<g:Out><g:KeyPair><b:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:Address><b:ReferenceParameters>' +
          '<c:ResourceURI>http://intel.com/wbem/wscim/1/amt-schema/1/AMT_PublicPrivateKeyPair</c:ResourceURI>' +
          '<c:SelectorSet><c:Selector Name="InstanceID">Intel(r) AMT Key: Handle: 0</c:Selector></c:SelectorSet>' +
          '</b:ReferenceParameters></g:KeyPair></g:Out>',
      ),
    );
    const epr = parseEpr(child(child(r.body, 'Out'), 'KeyPair'), 'KeyPair');
    assert.equal(epr.resourceUri, 'http://intel.com/wbem/wscim/1/amt-schema/1/AMT_PublicPrivateKeyPair');
    assert.equal(selectorValue(epr, 'InstanceID'), 'Intel(r) AMT Key: Handle: 0');
  });

  it('captures an instance in order and writes it back whole with changes escaped', () => {
    const r = parseWsman(
      envelope(
        '<g:AMT_GeneralSettings><g:A>1</g:A><g:HostName>old</g:HostName><g:L>x</g:L><g:L>y &amp; z</g:L><g:Z/></g:AMT_GeneralSettings>',
      ),
    );
    const inst = readInstance(r.body, 'AMT_GeneralSettings');
    assert.deepEqual(inst.properties, [
      ['A', '1'],
      ['HostName', 'old'],
      ['L', ['x', 'y & z']],
      ['Z', ''],
    ]);
    assert.equal(property(inst, 'HostName'), 'old');
    assert.equal(
      putBody(inst, { HostName: 'new<1>', DomainName: 'd' }),
      '<h:AMT_GeneralSettings xmlns:h="http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings">' +
        '<h:A>1</h:A><h:HostName>new&lt;1&gt;</h:HostName><h:L>x</h:L><h:L>y &amp; z</h:L><h:Z></h:Z><h:DomainName>d</h:DomainName>' +
        '</h:AMT_GeneralSettings>',
    );
  });
});

describe('faults and PT_STATUS', () => {
  it('reads a SOAP fault with code, subcode, reason and detail', () => {
    const r = parseWsman(
      envelope(
        '<a:Fault><a:Code><a:Value>a:Sender</a:Value><a:Subcode><a:Value>c:InvalidSelectors</a:Value></a:Subcode></a:Code>' +
          '<a:Reason><a:Text xml:lang="en-US">The Selectors for the resource were not valid.</a:Text></a:Reason>' +
          '<a:Detail><c:FaultDetail>http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors</c:FaultDetail></a:Detail></a:Fault>',
      ),
    );
    const fault = readFault(r);
    assert.deepEqual(fault, {
      code: 'a:Sender',
      subcode: 'c:InvalidSelectors',
      reason: 'The Selectors for the resource were not valid.',
      detail: 'http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors',
    });
    const e = faultError(fault, { action: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Get', httpStatus: 400 });
    assert.equal(e.code, 'SCS_WSMAN_FAULT');
    assert.match(e.message, /transfer\/Get with a fault: c:InvalidSelectors \(The Selectors/);
    assert.equal(e.details.httpStatus, 400);
    assert.equal(readFault(parseWsman(envelope('<g:X/>'))), undefined);
  });

  it('turns a non-zero ReturnValue into AmtError with the PT_STATUS name and action', () => {
    const action = 'http://intel.com/wbem/wscim/1/amt-schema/1/AMT_SetupAndConfigurationService/SetMEBxPassword';
    const out = child(
      parseWsman(envelope('<g:SetMEBxPassword_OUTPUT><g:ReturnValue>2054</g:ReturnValue></g:SetMEBxPassword_OUTPUT>'))
        .body,
      'SetMEBxPassword_OUTPUT',
    );
    assert.ok(out);
    assert.throws(
      () => checkReturnValue(out, action),
      (e) => {
        assert.ok(isAmtError(e, 2054));
        assert.ok(e instanceof AmtError && isScsError(e, 'SCS_WSMAN_RETURN_VALUE'));
        assert.equal(e.status, 'INVALID_PASSWORD');
        assert.equal(e.action, action);
        assert.equal(e.message, 'SetMEBxPassword returned 2054 (INVALID_PASSWORD)');
        return true;
      },
    );
    const ok = child(
      parseWsman(envelope('<g:X_OUTPUT><g:ReturnValue>0</g:ReturnValue></g:X_OUTPUT>')).body,
      'X_OUTPUT',
    );
    assert.ok(ok);
    assert.equal(checkReturnValue(ok, 'urn:X'), 0);
  });

  it('names every PT_STATUS of §5a and marks the rest unknown', () => {
    const names = [
      0, 1, 2, 3, 16, 25, 32, 34, 36, 38, 42, 43, 2054, 2057, 2060, 2062, 2063, 2064, 2066, 2069, 2070, 2076, 2081,
    ].map(ptStatusName);
    assert.ok(!names.some((n) => n.startsWith('UNKNOWN')));
    assert.equal(ptStatusName(2076), 'BLOCKING_COMPONENT');
    assert.equal(ptStatusName(9999), 'UNKNOWN_9999');
  });

  it('lists repeated elements as arrays in document order', () => {
    const r = parseWsman(envelope('<g:I><g:S>a</g:S><g:S>b</g:S></g:I>'));
    assert.deepEqual(
      children(child(r.body, 'I'), 'S').map((n) => text(n)),
      ['a', 'b'],
    );
  });
});
