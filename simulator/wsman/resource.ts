import type { Properties } from './envelope.ts';
import { WsmanFault } from './fault.ts';
import { readEpr, type Epr, type Selector } from './request.ts';
import { child, type XmlElement } from './xml.ts';

/** One CIM instance as the dispatcher sees it: key values for selectors, properties for replies. */
export interface Instance {
  keys: Readonly<Record<string, string>>;
  properties: Properties;
  /** For classes whose keys are references (AMT_TLSCredentialContext): a custom selector match. */
  matches?: (selectors: readonly Selector[]) => boolean;
}

export interface MethodResult {
  returnValue: number;
  /** Output parameters before ReturnValue, in order. */
  output?: Properties;
  /** The reply ends the session (`Connection: close`): AMT restarts its network services. */
  closeSession?: boolean;
}

export type MethodHandler = (input: MethodInput) => MethodResult | Promise<MethodResult>;

/** One WS-Management resource (a CIM class) of the device. */
export interface ResourceClass {
  readonly className: string;
  readonly resourceUri: string;
  instances(): Instance[];
  put?(target: Instance, body: XmlElement): Instance;
  create?(body: XmlElement): Epr;
  delete?(target: Instance): void;
  readonly methods?: Readonly<Record<string, MethodHandler>>;
}

/** Method parameters by local name. Malformed values are the caller's INVALID_PARAMETER (36). */
export class MethodInput {
  constructor(readonly element: XmlElement | undefined) {}

  has(name: string): boolean {
    return child(this.element, name) !== undefined;
  }

  text(name: string): string | undefined {
    return child(this.element, name)?.text;
  }

  /** A non-negative decimal integer, else undefined. */
  uint(name: string): number | undefined {
    const t = this.text(name);
    if (t === undefined || !/^\d{1,10}$/.test(t)) return undefined;
    return Number(t);
  }

  /**
   * An object reference parameter: an EPR (`<Address/><ReferenceParameters>...`) whose
   * InstanceID selector is returned, or a bare InstanceID string (some clients send only that).
   */
  instanceRef(name: string): string | undefined {
    const el = child(this.element, name);
    if (el === undefined) return undefined;
    const epr = readEpr(el);
    if (epr === undefined) return el.text === '' ? undefined : el.text;
    return epr.selectors.find((s) => s.name === 'InstanceID')?.value;
  }
}

/** xsd:boolean. */
export function parseBoolean(text: string | undefined, field: string): boolean | undefined {
  if (text === undefined) return undefined;
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw new WsmanFault('SchemaValidationError', `${field} must be true or false.`);
}

/** The element in a Put/Create body carrying the instance (named after the class). */
export function instanceBody(body: XmlElement | undefined, className: string): XmlElement {
  if (body === undefined || body.name !== className) {
    throw new WsmanFault('SchemaValidationError', `The body must hold one ${className} element.`);
  }
  return body;
}

export function serviceKeys(className: string, name: string): Record<string, string> {
  return {
    CreationClassName: className,
    Name: name,
    SystemCreationClassName: 'CIM_ComputerSystem',
    SystemName: 'Intel(r) AMT',
  };
}

/** The common properties of an AMT service singleton, alphabetical as AMT lists them. */
export function serviceProperties(className: string, name: string, extra: Properties = []): Properties {
  const props: Array<readonly [string, Properties[number][1]]> = [
    ['CreationClassName', className],
    ['ElementName', name],
    ['EnabledState', 5],
    ['Name', name],
    ['RequestedState', 12],
    ['SystemCreationClassName', 'CIM_ComputerSystem'],
    ['SystemName', 'Intel(r) AMT'],
    ...extra,
  ];
  return props.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}
