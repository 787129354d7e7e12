import { XMLParser, XMLValidator } from 'fast-xml-parser';

/**
 * A small, bounded, entity-free XML reader for WS-Management requests (protocol.md §5: "Parsers
 * must refuse DOCTYPE / external entities and bound message size").
 *
 * Elements keep only their local name: WS-Man clients differ in prefixes and default namespaces
 * (wsman-messages puts method parameters in the SOAP default namespace), so the simulator
 * dispatches on local names plus the Action and ResourceURI values, as AMT does.
 */
export interface XmlElement {
  /** Local name, prefix removed. */
  readonly name: string;
  /** Attributes by local name (namespace declarations are dropped). */
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: readonly XmlElement[];
  /** Concatenated character data directly inside this element, entity references decoded, trimmed. */
  readonly text: string;
}

export class XmlRefused extends Error {
  override readonly name = 'XmlRefused';
  constructor(
    message: string,
    readonly reason: 'too-large' | 'doctype' | 'malformed',
  ) {
    super(message);
  }
}

export const DEFAULT_MAX_XML_BYTES = 256 * 1024;

const parser = new XMLParser({
  preserveOrder: true,
  removeNSPrefix: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  // Entities are decoded below, by hand, for the five predefined ones and character references
  // only; nothing a document declares is ever expanded.
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: false,
});

const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** XML 1.0 predefined entities and numeric character references; any other reference is an error. */
export function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&([^;&\s]{0,12});/g, (whole, ref: string) => {
    const named = PREDEFINED[ref];
    if (named !== undefined) return named;
    const m = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(ref);
    const code = m === null ? NaN : m[1] !== undefined ? parseInt(m[1], 16) : Number(m[2]);
    if (!Number.isInteger(code) || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff) || code === 0) {
      throw new XmlRefused(`unknown or invalid entity reference ${whole}`, 'malformed');
    }
    return String.fromCodePoint(code);
  });
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) =>
    c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === '"' ? '&quot;' : '&apos;',
  );
}

type OrderedNode = Record<string, unknown>;

/** WS-Man messages nest a dozen levels at most; deeper documents are refused before recursion hurts. */
const MAX_DEPTH = 64;

function toElement(node: OrderedNode, depth = 0): XmlElement | undefined {
  if (depth > MAX_DEPTH) throw new XmlRefused(`XML nests deeper than ${MAX_DEPTH} levels`, 'malformed');
  let name: string | undefined;
  let rawChildren: unknown;
  for (const key of Object.keys(node)) {
    if (key === ':@') continue;
    name = key;
    rawChildren = node[key];
  }
  if (name === undefined || name === '#text') return undefined;
  const attrs: Record<string, string> = {};
  const rawAttrs = node[':@'];
  if (rawAttrs !== null && typeof rawAttrs === 'object') {
    for (const [k, v] of Object.entries(rawAttrs as Record<string, unknown>)) {
      // removeNSPrefix leaves `xmlns` (default namespace declarations) behind; they carry no data.
      if (k === 'xmlns' || typeof v !== 'string') continue;
      attrs[k] = decodeEntities(v);
    }
  }
  const children: XmlElement[] = [];
  let text = '';
  if (Array.isArray(rawChildren)) {
    for (const child of rawChildren as OrderedNode[]) {
      if (child !== null && typeof child === 'object' && '#text' in child) {
        const t = child['#text'];
        if (typeof t === 'string' || typeof t === 'number') text += String(t);
        continue;
      }
      const el = toElement(child, depth + 1);
      if (el !== undefined) children.push(el);
    }
  }
  return { name, attrs, children, text: decodeEntities(text).trim() };
}

/**
 * Parses one XML document. Refuses (XmlRefused) a document over `maxBytes` UTF-8 bytes, any
 * DOCTYPE or ENTITY declaration (so no entity, internal or external, is ever defined), unknown
 * entity references, and anything that is not well-formed.
 */
export function parseXml(input: string, maxBytes = DEFAULT_MAX_XML_BYTES): XmlElement {
  if (Buffer.byteLength(input, 'utf8') > maxBytes) {
    throw new XmlRefused(`XML document larger than ${maxBytes} bytes`, 'too-large');
  }
  if (/<!DOCTYPE/i.test(input) || /<!ENTITY/i.test(input)) {
    throw new XmlRefused('DOCTYPE and ENTITY declarations are refused', 'doctype');
  }
  const valid = XMLValidator.validate(input, { allowBooleanAttributes: false });
  if (valid !== true) {
    throw new XmlRefused(`XML is not well-formed: ${valid.err.msg} (line ${valid.err.line})`, 'malformed');
  }
  const parsed: unknown = parser.parse(input);
  const roots = Array.isArray(parsed) ? (parsed as OrderedNode[]).map(toElement).filter((e) => e !== undefined) : [];
  const root = roots[0];
  if (root === undefined || roots.length !== 1) {
    throw new XmlRefused('XML document must have exactly one root element', 'malformed');
  }
  return root;
}

/** First child with this local name. */
export function child(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name);
}

/** Follows a path of local names from `el`. */
export function path(el: XmlElement | undefined, ...names: string[]): XmlElement | undefined {
  let cur = el;
  for (const n of names) cur = child(cur, n);
  return cur;
}

export function childrenNamed(el: XmlElement | undefined, name: string): XmlElement[] {
  return el === undefined ? [] : el.children.filter((c) => c.name === name);
}
