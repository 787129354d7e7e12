import { ScsError } from '../../errors.ts';

/**
 * The SOAP 1.2 / WS-Management request envelope (DSP0226; protocol.md §5), written once:
 * every operation supplies only its Action, ResourceURI, optional selectors and body, and
 * every value passes through xmlEscape on its way in.
 */

export const NS = {
  soap: 'http://www.w3.org/2003/05/soap-envelope',
  addressing: 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
  wsman: 'http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd',
  enumeration: 'http://schemas.xmlsoap.org/ws/2004/09/enumeration',
  identity: 'http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd',
} as const;

export const ANONYMOUS = `${NS.addressing}/role/anonymous`;
export const OPERATION_TIMEOUT = 'PT60S';

/** Resource URI bases (§5). */
export const AMT_SCHEMA = 'http://intel.com/wbem/wscim/1/amt-schema/1/';
export const CIM_SCHEMA = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/';
export const IPS_SCHEMA = 'http://intel.com/wbem/wscim/1/ips-schema/1/';

/** WS-Transfer and WS-Enumeration actions (§5). */
export const ACTION = {
  get: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Get',
  put: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Put',
  create: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Create',
  delete: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete',
  enumerate: 'http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate',
  pull: 'http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull',
} as const;

export const FAULT_ACTION = 'http://schemas.dmtf.org/wbem/wsman/1/wsman/fault';

/**
 * Strings the request builders make again for every request (resource URIs, method Actions,
 * header prefixes), kept once made: a string built by `+` is a rope that V8 flattens again,
 * copying, each time a regex reads it (xmlEscape) or a Map hashes it. The keys are class and
 * method names from this code, so the tables stay small; still, each is bounded.
 */
const MEMO_LIMIT = 512;
function memo<V>(table: Map<string, V>, key: string, make: () => V): V {
  const hit = table.get(key);
  if (hit !== undefined) return hit;
  const value = make();
  if (table.size < MEMO_LIMIT) table.set(key, value);
  return value;
}

const resourceUris = new Map<string, string>();

export function resourceUri(className: string): string {
  return memo(resourceUris, className, () => {
    if (className.startsWith('AMT_')) return AMT_SCHEMA + className;
    if (className.startsWith('CIM_')) return CIM_SCHEMA + className;
    if (className.startsWith('IPS_')) return IPS_SCHEMA + className;
    throw new RangeError(`no schema for class ${className}`);
  });
}

/** A WS-Addressing endpoint reference to an instance (e.g. a key pair or certificate handle). */
export interface EndpointReference {
  readonly address: string;
  readonly resourceUri: string;
  readonly selectors: readonly Selector[];
}

export interface Selector {
  readonly name: string;
  readonly value: string | EndpointReference;
}

/** One WS-Management call over HTTP POST /wsman. */
export interface WsmanCall {
  readonly kind: 'call';
  readonly action: string;
  readonly resourceUri: string;
  readonly selectors?: readonly Selector[];
  /** Inner XML of s:Body, built with the helpers below (values already escaped). */
  readonly body: string;
  /** Get/Enumerate/Pull: safe to re-send after an idle connection close. */
  readonly idempotent: boolean;
}

/** DSP0226 §11 Identify: no addressing headers at all. */
export interface IdentifyCall {
  readonly kind: 'identify';
}

export type WsmanRequest = WsmanCall | IdentifyCall;

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/** Characters XML 1.0 §2.2 does not allow at all, escaped or not. */
// eslint-disable-next-line no-control-regex
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

/** Anything xmlEscape has to look at: a character XML cannot carry, or one to escape. */
// eslint-disable-next-line no-control-regex
const NOT_PLAIN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF&<>"']/;

/** Escapes a value for element text or an attribute; refuses characters XML cannot carry. */
export function xmlEscape(value: string): string {
  // Most values (URIs, names, numbers, base64) need nothing: one scan instead of two.
  if (!NOT_PLAIN.test(value)) return value;
  const bad = NOT_XML.exec(value);
  if (bad) {
    // The value may be a password: name the character, never the value.
    const code = (bad[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
    throw new ScsError('SCS_PROFILE_INVALID', `a value holds U+${code}, which XML cannot carry`);
  }
  return /[&<>"']/.test(value) ? value.replace(/[&<>"']/g, (c) => ESCAPES[c] as string) : value;
}

const PROLOGUE =
  '<?xml version="1.0" encoding="UTF-8"?>' +
  `<s:Envelope xmlns:s="${NS.soap}" xmlns:a="${NS.addressing}" xmlns:w="${NS.wsman}">`;

/** Serializes selectors (header or inside an EPR). */
export function selectorSetXml(selectors: readonly Selector[]): string {
  let out = '<w:SelectorSet>';
  for (const s of selectors) {
    out += `<w:Selector Name="${xmlEscape(s.name)}">`;
    out +=
      typeof s.value === 'string'
        ? xmlEscape(s.value)
        : `<a:EndpointReference>${eprXml(s.value)}</a:EndpointReference>`;
    out += '</w:Selector>';
  }
  return out + '</w:SelectorSet>';
}

/** The content of an EPR element: Address, then ReferenceParameters (ResourceURI + SelectorSet). */
export function eprXml(epr: EndpointReference): string {
  return (
    `<a:Address>${xmlEscape(epr.address)}</a:Address><a:ReferenceParameters>` +
    `<w:ResourceURI>${xmlEscape(epr.resourceUri)}</w:ResourceURI>${selectorSetXml(epr.selectors)}` +
    '</a:ReferenceParameters>'
  );
}

/** The whole request document; `messageId` is `uuid:<v4>` (DSP0226 §5.4.4). */
export function buildEnvelope(request: WsmanRequest, messageId: string): string {
  if (request.kind === 'identify') {
    return (
      '<?xml version="1.0" encoding="UTF-8"?>' +
      `<s:Envelope xmlns:s="${NS.soap}" xmlns:wsmid="${NS.identity}">` +
      '<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>'
    );
  }
  // No s:mustUnderstand attributes: Intel's own stack (DMT wsman-messages) omits them and real
  // firmware accepts that; fewer variations for a device to parse.
  let header = headerHead(request.action, request.resourceUri) + xmlEscape(messageId) + HEADER_TAIL;
  if (request.selectors && request.selectors.length > 0) header += selectorSetXml(request.selectors);
  return `${header}</s:Header><s:Body>${request.body}</s:Body></s:Envelope>`;
}

const HEADER_TAIL =
  '</a:MessageID>' +
  `<a:ReplyTo><a:Address>${ANONYMOUS}</a:Address></a:ReplyTo>` +
  `<w:OperationTimeout>${OPERATION_TIMEOUT}</w:OperationTimeout>`;
const headerHeads = new Map<string, Map<string, string>>();

/** The document up to the MessageID's value, the same for every request with this Action and ResourceURI. */
function headerHead(action: string, uri: string): string {
  const byUri = memo(headerHeads, action, () => new Map<string, string>());
  return memo(
    byUri,
    uri,
    () =>
      `${PROLOGUE}<s:Header><a:Action>${xmlEscape(action)}</a:Action><a:To>/wsman</a:To>` +
      `<w:ResourceURI>${xmlEscape(uri)}</w:ResourceURI><a:MessageID>`,
  );
}

/** A property or method parameter value. Arrays repeat the element (CIM arrays). */
export type Value = string | number | boolean | EndpointReference | readonly (string | number | boolean)[];

/** `<h:Name>value</h:Name>` (repeated for an array; an EPR as its Address/ReferenceParameters). */
export function fieldXml(name: string, value: Value): string {
  if (Array.isArray(value)) return value.map((v: string | number | boolean) => fieldXml(name, v)).join('');
  const inner =
    typeof value === 'object' && !Array.isArray(value)
      ? eprXml(value as EndpointReference)
      : xmlEscape(String(value as string | number | boolean));
  return `<h:${name}>${inner}</h:${name}>`;
}

/** `<h:Element xmlns:h="uri"><h:Name>value</h:Name>...</h:Element>` in the given order. */
export function elementXml(element: string, namespace: string, fields: readonly (readonly [string, Value])[]): string {
  let out = `<h:${element} xmlns:h="${xmlEscape(namespace)}">`;
  for (const [name, value] of fields) out += fieldXml(name, value);
  return `${out}</h:${element}>`;
}

/** A method call body: `<h:Method_INPUT xmlns:h="ResourceURI">` with its parameters in order (§5). */
export function methodInput(
  resourceUri: string,
  method: string,
  params: readonly (readonly [string, Value])[] = [],
): string {
  return elementXml(`${method}_INPUT`, resourceUri, params);
}

const methodActions = new Map<string, Map<string, string>>();

/** The Action of a method call: ResourceURI + '/' + Method (§5). */
export function methodAction(resourceUri: string, method: string): string {
  const byMethod = memo(methodActions, resourceUri, () => new Map<string, string>());
  return memo(byMethod, method, () => `${resourceUri}/${method}`);
}
