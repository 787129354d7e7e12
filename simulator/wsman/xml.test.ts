import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeEntities, escapeXml, parseXml, path, XmlRefused } from './xml.ts';

function refusal(input: string, max?: number): XmlRefused['reason'] {
  try {
    parseXml(input, max);
  } catch (e) {
    assert.ok(e instanceof XmlRefused, String(e));
    return e.reason;
  }
  assert.fail('expected the document to be refused');
}

describe('WS-Man XML reader', () => {
  it('keeps local names whatever the prefixes or default namespace', () => {
    const a = parseXml('<s:Envelope xmlns:s="urn:s"><s:Body><p:X xmlns:p="urn:p">1</p:X></s:Body></s:Envelope>');
    const b = parseXml('<Envelope xmlns="urn:s"><Body><X>1</X></Body></Envelope>');
    assert.equal(path(a, 'Body', 'X')?.text, '1');
    assert.equal(path(b, 'Body', 'X')?.text, '1');
  });

  it('decodes the five predefined entities and character references in text and attributes', () => {
    const doc = parseXml('<a n="x&amp;y&#65;">&lt;b&gt; &quot;c&apos; &#x263A;</a>');
    assert.equal(doc.text, '<b> "c\' \u263a');
    assert.equal(doc.attrs.n, 'x&yA');
  });

  it('refuses a DOCTYPE, internal or external, before parsing anything', () => {
    assert.equal(refusal('<!DOCTYPE a [<!ENTITY x "boom">]><a>&x;</a>'), 'doctype');
    assert.equal(refusal('<?xml version="1.0"?><!doctype a SYSTEM "file:///etc/passwd"><a/>'), 'doctype');
    assert.equal(refusal('<a><!ENTITY x "y"></a>'), 'doctype');
  });

  it('refuses references to entities nobody defined', () => {
    assert.equal(refusal('<a>&xxe;</a>'), 'malformed');
    assert.throws(() => decodeEntities('&#0;'), XmlRefused);
  });

  it('refuses a document over the size bound, counted in UTF-8 bytes', () => {
    const doc = `<a>${'é'.repeat(600)}</a>`; // 1207 bytes, 607 characters
    assert.equal(refusal(doc, 1000), 'too-large');
    assert.equal(parseXml(doc, 2000).text.length, 600);
  });

  it('refuses documents that are not well-formed, have two roots or nest absurdly deep', () => {
    assert.equal(refusal('<a><b></a>'), 'malformed');
    assert.equal(refusal('<a/><b/>'), 'malformed');
    assert.equal(refusal('plain text'), 'malformed');
    assert.equal(refusal(`${'<a>'.repeat(100)}${'</a>'.repeat(100)}`), 'malformed');
  });

  it('escapes what it writes so the reader gives it back', () => {
    const s = `<>&"' Intel(r) AMT`;
    assert.equal(parseXml(`<a x="${escapeXml(s)}">${escapeXml(s)}</a>`).text, s);
  });
});
