import { WsmanFault } from './fault.ts';
import { child, childrenNamed, path, type XmlElement } from './xml.ts';

/** An endpoint reference (WS-Addressing EPR) as used by AMT for object references. */
export interface Epr {
  address: string;
  resourceUri: string;
  selectors: readonly Selector[];
}

/** A selector holds text, or (AMT_TLSCredentialContext) a reference to another instance. */
export type Selector = { name: string; value: string; epr?: undefined } | { name: string; epr: Epr; value?: undefined };

/** What the simulator needs from a WS-Management request, independent of prefixes and layout. */
export interface WsmanRequest {
  /** Empty when the request has no Action (Identify needs none). */
  action: string;
  resourceUri: string;
  /** As sent; may be empty (some clients send `<MessageID/>`). */
  messageId: string;
  selectors: readonly Selector[];
  /** The first element child of Body, if any. */
  body: XmlElement | undefined;
  isIdentify: boolean;
}

/** Reads an EPR's address, ResourceURI and simple selectors from the element holding them. */
export function readEpr(el: XmlElement): Epr | undefined {
  const holder = child(el, 'EndpointReference') ?? el;
  const ref = child(holder, 'ReferenceParameters');
  if (ref === undefined) return undefined;
  const selectors = childrenNamed(child(ref, 'SelectorSet'), 'Selector').map((s): Selector => {
    const name = s.attrs.Name ?? '';
    const nested = child(s, 'EndpointReference');
    const epr = nested === undefined ? undefined : readEpr(nested);
    return epr === undefined ? { name, value: s.text } : { name, epr };
  });
  return {
    address: child(holder, 'Address')?.text ?? '',
    resourceUri: child(ref, 'ResourceURI')?.text ?? '',
    selectors,
  };
}

function readSelectors(set: XmlElement | undefined): Selector[] {
  return childrenNamed(set, 'Selector').map((s): Selector => {
    const name = s.attrs.Name;
    if (name === undefined || name === '') {
      throw new WsmanFault('InvalidSelectors', 'A selector has no Name attribute.');
    }
    const eprHolder = child(s, 'EndpointReference');
    if (eprHolder !== undefined) {
      const epr = readEpr(eprHolder);
      if (epr === undefined) throw new WsmanFault('InvalidSelectors', `Selector ${name} holds a malformed reference.`);
      return { name, epr };
    }
    return { name, value: s.text };
  });
}

/**
 * The header facts of a SOAP 1.2 WS-Management envelope. Faults (WsmanFault) for an envelope
 * that is not SOAP-shaped or lacks the headers the operation needs.
 */
export function readRequest(root: XmlElement): WsmanRequest {
  if (root.name !== 'Envelope') {
    throw new WsmanFault('InvalidMessageInformationHeader', 'The message is not a SOAP envelope.');
  }
  const header = child(root, 'Header');
  const bodyEl = child(root, 'Body');
  if (bodyEl === undefined) {
    throw new WsmanFault('SchemaValidationError', 'The SOAP envelope has no Body.');
  }
  const body = bodyEl.children[0];
  // DSP0217: Identify is recognised by its body alone; clients send it with no Action at all.
  const isIdentify = body?.name === 'Identify';
  return {
    action: child(header, 'Action')?.text ?? '',
    resourceUri: child(header, 'ResourceURI')?.text ?? '',
    messageId: child(header, 'MessageID')?.text ?? '',
    selectors: readSelectors(path(header, 'SelectorSet')),
    body,
    isIdentify,
  };
}
