import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { XMLParser } from 'fast-xml-parser';
import { parseXmlTree, XmlSyntaxError } from './xml.ts';

/** fast-xml-parser 5 set up the way a WS-Man reply reader would be: the reference for the tree shape. */
const reference = new XMLParser({
  removeNSPrefix: true,
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  trimValues: true,
});

/** Prototype-free objects vs plain ones: compare as JSON. */
const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v)) as unknown;

function syntaxError(xml: string, why: RegExp): void {
  assert.throws(
    () => parseXmlTree(xml),
    (e) => e instanceof XmlSyntaxError && why.test(e.message),
    xml,
  );
}

describe('XML reader: same tree as fast-xml-parser', () => {
  it('reads an AMT-style reply: prefixes, attributes, repeated and empty elements, comments, PIs', () => {
    const xml =
      '<?xml version="1.0" encoding="UTF-8"?><!-- from firmware --><a:Envelope xmlns:a="urn:s" xmlns:b="urn:b" xmlns:g="urn:g">' +
      '<a:Header><b:Action a:mustUnderstand="true">urn:act</b:Action></a:Header><a:Body><g:Out>' +
      '<g:Sel Name=\'InstanceID\'>Intel(r) AMT &amp; co</g:Sel><g:L>1</g:L><g:L>2</g:L><g:E/><g:F></g:F><g:A x="1 > 0"/>' +
      '<?pi ignored?><g:M>a<g:N>b</g:N>c</g:M><g:W>  spaced  </g:W></g:Out></a:Body></a:Envelope>';
    assert.deepEqual(plain(parseXmlTree(xml)), plain(reference.parse(xml)));
  });

  it('agrees on random WS-Man-like documents', () => {
    const name = fc.constantFrom('Envelope', 'Body', 'Item', 'InstanceID', 'ReturnValue', 'Selector', 'X');
    const prefix = fc.constantFrom('', 'a:', 'g:', 'wsman:');
    const textArb = fc.stringMatching(/^[A-Za-z0-9 .:()&;#-]{0,12}$/).map((t) => t.replace(/&/g, '&amp;'));
    const attrs = fc.uniqueArray(fc.constantFrom('Name', 'x', 'lang'), { maxLength: 2 });
    type Node = { tag: string; attrs: string[]; text: string; kids: Node[]; self: boolean };
    const node: fc.Memo<Node> = fc.memo((depth) =>
      fc.record({
        tag: fc.tuple(prefix, name).map(([p, n]) => p + n),
        attrs,
        text: textArb,
        kids: depth <= 1 ? fc.constant([]) : fc.array(node(depth - 1), { maxLength: 4 }),
        self: fc.boolean(),
      }),
    );
    const render = (n: Node): string => {
      const a = n.attrs.map((k, i) => ` ${k}="v${i}"`).join('');
      if (n.self && n.kids.length === 0 && n.text === '') return `<${n.tag}${a}/>`;
      // Either text or children (WS-Man has no mixed content).
      const inner = n.kids.length > 0 ? n.kids.map(render).join('') : n.text;
      return `<${n.tag}${a}>${inner}</${n.tag}>`;
    };
    fc.assert(
      fc.property(node(4), (root) => {
        const xml = `<?xml version="1.0"?>${render(root)}`;
        assert.deepEqual(plain(parseXmlTree(xml)), plain(reference.parse(xml)));
      }),
      { numRuns: 500 },
    );
  });
});

describe('XML reader: refusals', () => {
  it('refuses any DOCTYPE or declaration', () => {
    syntaxError('<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>', /DOCTYPE/);
    syntaxError('<x><!ENTITY e "boom"></x>', /DOCTYPE/);
    syntaxError('<!ELEMENT x ANY><x/>', /DOCTYPE/);
  });

  it('checks structure: end tags match, everything closes, one root, no stray text', () => {
    syntaxError('<a><b></a></b>', /does not close <b>/);
    syntaxError('<a><b></b>', /<a> is never closed/);
    syntaxError('<a/><b/>', /second root/);
    syntaxError('text<a/>', /text outside/);
    syntaxError('', /no root/);
    syntaxError('<a x=1/>', /unquoted/);
    syntaxError('<a x/>', /without a value/);
    syntaxError('<a x="1/>', /unterminated attribute/);
    syntaxError('<a><!-- never ends', /unterminated comment/);
    syntaxError('<a><![CDATA[ open', /unterminated CDATA/);
    syntaxError('<a', /unterminated start tag/);
  });

  it('matches end tags in place: white space before ">" (XML S only), prefix and local name both', () => {
    assert.deepEqual(plain(parseXmlTree('<p:a><p:b>1</p:b \t\r\n></p:a >')), { a: { b: '1' } });
    syntaxError('<a>x</a\u00a0>', /end tag <\/a\u00a0> does not close <a>/);
    syntaxError('<a><b></bc></a>', /end tag <\/bc> does not close <b>/);
    syntaxError('<p:a></q:a>', /end tag <\/q:a> does not close <p:a>/);
    syntaxError('<a:x></a:x y>', /does not close <a:x>/);
    syntaxError('<a></a', /unterminated end tag/);
    syntaxError('</a>', /does not close <\(nothing\)>/);
  });

  it('bounds nesting depth', () => {
    const deep = '<a>'.repeat(70) + '</a>'.repeat(70);
    syntaxError(deep, /nested deeper than 64/);
    assert.ok(parseXmlTree('<a>'.repeat(60) + '</a>'.repeat(60)));
  });

  it('keeps CDATA literal and element names like __proto__ harmless', () => {
    const tree = parseXmlTree('<r><__proto__><polluted>yes</polluted></__proto__><c><![CDATA[a&amp;<b>]]></c></r>');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    const r = tree.r as Record<string, unknown>;
    assert.deepEqual(plain(r.__proto__), { polluted: 'yes' });
    assert.equal(r.c, 'a&amp;amp;<b>'); // '&' escaped so that decoding on read gives back 'a&amp;<b>'
  });

  it('inherits no names: constructor, toString and hasOwnProperty are elements like any other', () => {
    const tree = parseXmlTree('<r><constructor>x</constructor><toString>1</toString><toString>2</toString></r>');
    const at = (o: unknown, name: string): unknown => (o as Record<string, unknown>)[name];
    // A plain {} would have found Object.prototype.constructor and made an array of it and 'x'.
    assert.equal(at(tree.r, 'constructor'), 'x');
    assert.deepEqual(at(tree.r, 'toString'), ['1', '2']);
    assert.equal(at(tree.r, 'hasOwnProperty'), undefined);
    assert.equal(at(parseXmlTree('<r a="1"/>').r, 'valueOf'), undefined);
  });

  it('throws nothing but XmlSyntaxError on random input', () => {
    const alphabet = fc.constantFrom(
      '<',
      '>',
      '/',
      '!',
      '?',
      '-',
      '[',
      ']',
      '=',
      '"',
      "'",
      ' ',
      'a',
      'b:',
      'CDATA',
      'DOCTYPE',
      '&',
    );
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 60 }), (parts) => {
        try {
          parseXmlTree(parts.join(''));
        } catch (e) {
          assert.ok(e instanceof XmlSyntaxError, String(e));
        }
      }),
      { numRuns: 3000 },
    );
  });
});
