import { ScsError } from '../../errors.ts';
import type { EndpointReference, Selector } from './envelope.ts';
import { ATTRIBUTE_PREFIX, parseXmlTree } from './xml.ts';

/**
 * Reply parsing (protocol.md §5): namespace prefixes removed, so code matches local names only
 * (devices and clients differ in prefixes and default namespaces); DOCTYPE and entity
 * declarations are refused, entities are never expanded by the parser (the five XML escapes and
 * character references are decoded by `text()` here), and the size is bounded. The tree comes
 * from xml.ts, which gives fast-xml-parser's shape (a differential test holds them together).
 */

export type XmlValue = string | XmlObject | readonly XmlValue[];
export interface XmlObject {
  readonly [name: string]: XmlValue;
}

export interface WsmanReply {
  readonly header: XmlObject;
  readonly body: XmlObject;
  readonly action: string | undefined;
  readonly relatesTo: string | undefined;
  readonly messageId: string | undefined;
}

export const DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024;
const ATTR = ATTRIBUTE_PREFIX;

export function malformedReply(why: string, details: Record<string, string | number | null> = {}): ScsError {
  return new ScsError('SCS_WSMAN_MALFORMED_REPLY', `unexpected WS-Management reply: ${why}`, { details });
}

/** Parses a reply document into its header and body (local names). */
export function parseWsman(xml: string | Buffer, maxBytes = DEFAULT_MAX_REPLY_BYTES): WsmanReply {
  const size = typeof xml === 'string' ? Buffer.byteLength(xml) : xml.length;
  if (size > maxBytes) throw malformedReply(`${size} bytes is over the ${maxBytes}-byte bound`, { bytes: size });
  const source = typeof xml === 'string' ? xml : xml.toString('utf8');
  // No DTDs at all: they are the door to entity expansion and external entities (XXE).
  // (The plain search first: replies carry no `<!` at all, and it is cheaper than the regex.)
  if (source.includes('<!') && /<!\s*(DOCTYPE|ENTITY)/i.test(source))
    throw malformedReply('it carries a DOCTYPE or ENTITY declaration');
  let doc: XmlValue;
  try {
    doc = parseXmlTree(source);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : 'unreadable';
    throw new ScsError('SCS_WSMAN_MALFORMED_REPLY', `unexpected WS-Management reply: not well-formed XML (${why})`, {
      cause,
    });
  }
  const envelope = child(doc, 'Envelope');
  const body = child(envelope, 'Body');
  if (!isObject(envelope) || body === undefined) throw malformedReply('no SOAP Envelope with a Body');
  const header = child(envelope, 'Header');
  return {
    header: isObject(header) ? header : {},
    body: isObject(body) ? body : {},
    action: text(child(header, 'Action')),
    relatesTo: text(child(header, 'RelatesTo')),
    messageId: text(child(header, 'MessageID')),
  };
}

export function isObject(v: XmlValue | undefined): v is XmlObject {
  return typeof v === 'object' && !Array.isArray(v);
}

/** The first child element with this local name (repeated elements arrive as an array). */
export function child(node: XmlValue | undefined, name: string): XmlValue | undefined {
  if (!isObject(node)) return undefined;
  const v = node[name];
  return Array.isArray(v) ? (v[0] as XmlValue | undefined) : v;
}

/** Every child element with this local name, in document order. */
export function children(node: XmlValue | undefined, name: string): readonly XmlValue[] {
  if (!isObject(node)) return [];
  const v = node[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? (v as readonly XmlValue[]) : [v];
}

/** Child element names in document order (attributes and text left out). */
export function elementNames(node: XmlValue | undefined): string[] {
  return isObject(node) ? Object.keys(node).filter((k) => !k.startsWith(ATTR) && k !== '#text') : [];
}

export function attribute(node: XmlValue | undefined, name: string): string | undefined {
  if (!isObject(node)) return undefined;
  const v = node[ATTR + name];
  return typeof v === 'string' ? decodeXml(v) : undefined;
}

const NAMED: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Decodes the five predefined entities and numeric character references (XML 1.0 §4.6, §4.1). */
export function decodeXml(raw: string): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (m, ref: string) => {
    if (ref.startsWith('#')) {
      const cp = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return NAMED[ref] ?? m;
  });
}

/** Text content of an element (decoded); undefined if absent or if it has only child elements. */
export function text(node: XmlValue | undefined): string | undefined {
  if (typeof node === 'string') return decodeXml(node);
  if (!isObject(node)) return undefined;
  const t = node['#text'];
  if (typeof t === 'string') return decodeXml(t);
  // <x/> or <x a="1"/>: present and empty.
  return elementNames(node).length === 0 ? '' : undefined;
}

/** Text of the named child, required. */
export function requireText(node: XmlValue | undefined, name: string, where: string): string {
  const v = text(child(node, name));
  if (v === undefined) throw malformedReply(`${where} has no ${name}`, { missing: name });
  return v;
}

export function requireChild(node: XmlValue | undefined, name: string, where: string): XmlValue {
  const v = child(node, name);
  if (v === undefined) throw malformedReply(`${where} has no ${name}`, { missing: name });
  return v;
}

export function toInt(value: string, what: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw malformedReply(`${what} is "${value.slice(0, 40)}", not an integer`);
  return Number(value);
}

export function optionalInt(node: XmlValue | undefined, name: string, where: string): number | undefined {
  const v = text(child(node, name));
  return v === undefined ? undefined : toInt(v, `${where}.${name}`);
}

export function optionalBool(node: XmlValue | undefined, name: string): boolean | undefined {
  const v = text(child(node, name));
  if (v === undefined) return undefined;
  return v.trim().toLowerCase() === 'true' || v.trim() === '1';
}

/** Reads a WS-Addressing EPR: Address + ReferenceParameters/ResourceURI + SelectorSet. */
export function parseEpr(node: XmlValue | undefined, where: string): EndpointReference {
  const address = text(child(node, 'Address')) ?? '';
  const params = requireChild(node, 'ReferenceParameters', where);
  const resourceUri = requireText(params, 'ResourceURI', `${where}.ReferenceParameters`);
  const selectors: Selector[] = children(child(params, 'SelectorSet'), 'Selector').map((s) => {
    const name = attribute(s, 'Name') ?? '';
    const inner = child(s, 'EndpointReference');
    return { name, value: inner === undefined ? (text(s) ?? '') : parseEpr(inner, `${where} selector ${name}`) };
  });
  return { address, resourceUri, selectors };
}

/** The string value of a selector of an EPR (e.g. InstanceID). */
export function selectorValue(epr: EndpointReference, name: string): string | undefined {
  const s = epr.selectors.find((x) => x.name === name);
  return typeof s?.value === 'string' ? s.value : undefined;
}
