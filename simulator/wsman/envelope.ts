import type { WsmanFault } from './fault.ts';
import { ANONYMOUS, NS } from './namespaces.ts';
import type { Epr } from './request.ts';
import { escapeXml } from './xml.ts';

/**
 * Reply envelopes, written once (design.md practice 2). The prefixes follow AMT's own replies
 * (a = SOAP, b = addressing, c = wsman, ..., g = the body's namespace, h = the class inside an
 * enumeration) so that clients meet the prefixes real firmware uses; a correct client reads
 * namespaces, not prefixes.
 */
const FIXED_PREFIXES = `xmlns:a="${NS.soap}" xmlns:b="${NS.wsa}" xmlns:c="${NS.wsman}" xmlns:d="${NS.trust}" xmlns:e="${NS.secext}" xmlns:f="${NS.cimbinding}"`;

/** AMT's MessageID form: `uuid:00000000-8086-8086-8086-` and a 12-digit hexadecimal counter. */
export class MessageIds {
  #n = 0;
  next(): string {
    this.#n++;
    return `uuid:00000000-8086-8086-8086-${this.#n.toString(16).toUpperCase().padStart(12, '0')}`;
  }
}

export type PropValue = string | number | boolean | Epr | readonly PropValue[];
/** Ordered properties of an instance or a method output; undefined values are left out. */
export type Properties = ReadonlyArray<readonly [string, PropValue | undefined]>;

export function el(name: string, content: string, attrs = ''): string {
  return `<${name}${attrs}>${content}</${name}>`;
}

/** An EPR body (Address + ReferenceParameters) in AMT's layout, prefixes b (wsa) and c (wsman). */
export function renderEpr(epr: Epr): string {
  const selectors = epr.selectors
    .map((s) =>
      el(
        'c:Selector',
        s.epr === undefined ? escapeXml(s.value) : el('b:EndpointReference', renderEpr(s.epr)),
        ` Name="${escapeXml(s.name)}"`,
      ),
    )
    .join('');
  return (
    el('b:Address', escapeXml(epr.address)) +
    el(
      'b:ReferenceParameters',
      el('c:ResourceURI', escapeXml(epr.resourceUri)) + (selectors === '' ? '' : el('c:SelectorSet', selectors)),
    )
  );
}

function isEpr(v: PropValue): v is Epr {
  return typeof v === 'object' && !Array.isArray(v) && 'resourceUri' in v;
}

function renderValue(prefix: string, name: string, value: PropValue): string {
  const tag = `${prefix}:${name}`;
  if (typeof value === 'string') return el(tag, escapeXml(value));
  if (typeof value === 'number' || typeof value === 'boolean') return el(tag, String(value));
  if (isEpr(value)) return el(tag, renderEpr(value));
  return value.map((v) => renderValue(prefix, name, v)).join('');
}

export function renderProps(prefix: string, props: Properties): string {
  let out = '';
  for (const [name, value] of props) if (value !== undefined) out += renderValue(prefix, name, value);
  return out;
}

export interface ReplyParts {
  action: string;
  relatesTo: string;
  resourceUri?: string;
  /** Extra prefix -> namespace declarations for the body (g, h, i...). */
  namespaces?: Readonly<Record<string, string>>;
  body: string;
}

export function envelope(parts: ReplyParts, messageId: string): string {
  const extra = Object.entries(parts.namespaces ?? {})
    .map(([p, uri]) => ` xmlns:${p}="${escapeXml(uri)}"`)
    .join('');
  const header =
    el('b:To', ANONYMOUS) +
    el('b:RelatesTo', escapeXml(parts.relatesTo)) +
    el('b:Action', escapeXml(parts.action), ' a:mustUnderstand="true"') +
    el('b:MessageID', messageId) +
    (parts.resourceUri === undefined ? '' : el('c:ResourceURI', escapeXml(parts.resourceUri)));
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<a:Envelope ${FIXED_PREFIXES}${extra} xmlns:xsi="${NS.xsi}">` +
    el('a:Header', header) +
    el('a:Body', parts.body) +
    '</a:Envelope>'
  );
}

export function faultEnvelope(fault: WsmanFault, relatesTo: string, messageId: string): string {
  const subPrefix = fault.subcodeNamespace === NS.wsa ? 'b' : fault.subcodeNamespace === NS.wsman ? 'c' : 'g';
  const body = el(
    'a:Fault',
    el('a:Code', el('a:Value', `a:${fault.code}`) + el('a:Subcode', el('a:Value', `${subPrefix}:${fault.subcode}`))) +
      el('a:Reason', el('a:Text', escapeXml(fault.message), ' xml:lang="en-US"')) +
      el('a:Detail', ''),
  );
  return envelope(
    {
      action: fault.action,
      relatesTo,
      namespaces: subPrefix === 'g' ? { g: NS.enumeration } : {},
      body,
    },
    messageId,
  );
}
