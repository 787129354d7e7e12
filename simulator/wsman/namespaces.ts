/** Namespaces, resource URI bases and actions of WS-Management as AMT speaks it (protocol.md §5, DSP0226). */
export const NS = {
  soap: 'http://www.w3.org/2003/05/soap-envelope',
  wsa: 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
  wsman: 'http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd',
  trust: 'http://schemas.xmlsoap.org/ws/2005/02/trust',
  secext: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd',
  cimbinding: 'http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd',
  transfer: 'http://schemas.xmlsoap.org/ws/2004/09/transfer',
  enumeration: 'http://schemas.xmlsoap.org/ws/2004/09/enumeration',
  common: 'http://schemas.dmtf.org/wbem/wscim/1/common',
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
  wsmid: 'http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd',
  dash: 'http://schemas.dmtf.org/wbem/dash/1/dash.xsd',
} as const;

export const AMT_BASE = 'http://intel.com/wbem/wscim/1/amt-schema/1/';
export const CIM_BASE = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/';
export const IPS_BASE = 'http://intel.com/wbem/wscim/1/ips-schema/1/';

export const ANONYMOUS = 'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous';

export const ACTION = {
  get: `${NS.transfer}/Get`,
  put: `${NS.transfer}/Put`,
  create: `${NS.transfer}/Create`,
  delete: `${NS.transfer}/Delete`,
  enumerate: `${NS.enumeration}/Enumerate`,
  pull: `${NS.enumeration}/Pull`,
  release: `${NS.enumeration}/Release`,
  /** Faults raised by WS-Addressing processing (DestinationUnreachable, ActionNotSupported...). */
  addressingFault: `${NS.wsa}/fault`,
  /** Faults raised by WS-Management processing (InvalidSelectors, AlreadyExists...). */
  wsmanFault: 'http://schemas.dmtf.org/wbem/wsman/1/wsman/fault',
} as const;

/** Resource URI of a class from its name (AMT_, CIM_ or IPS_ prefix picks the base). */
export function resourceUriOf(className: string): string {
  if (className.startsWith('CIM_')) return CIM_BASE + className;
  if (className.startsWith('IPS_')) return IPS_BASE + className;
  return AMT_BASE + className;
}
