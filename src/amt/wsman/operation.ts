import {
  ACTION,
  fieldXml,
  methodAction,
  methodInput,
  resourceUri as uriOf,
  type Selector,
  type Value,
  type WsmanCall,
  type WsmanRequest,
  xmlEscape,
} from './envelope.ts';
import { checkReturnValue } from './fault.ts';
import {
  attribute,
  decodeXml,
  elementNames,
  isObject,
  malformedReply,
  requireChild,
  type WsmanReply,
  type XmlValue,
} from './parse.ts';

/**
 * What the AMT client runs. An operation sends one or more requests through `exchange` (which
 * has already turned faults into errors and checked RelatesTo/Action) and returns a typed
 * value. Most are a single request and a reply parser; enumeration loops over Pull.
 */
export type Exchange = (request: WsmanRequest) => Promise<WsmanReply>;

export interface Operation<T> {
  /** `Class.Method` for logs and errors, e.g. `AMT_SetupAndConfigurationService.CommitChanges`. */
  readonly name: string;
  run(exchange: Exchange): Promise<T>;
}

export interface SingleOperation<T> extends Operation<T> {
  readonly request: WsmanRequest;
  parse(reply: WsmanReply): T;
}

/**
 * A class, not an object literal with a `run` arrow: tsx (esbuild keepNames) names each such
 * arrow with a defineProperty when it is created, once per operation per device; a prototype
 * method is named once.
 */
class Single<T> implements SingleOperation<T> {
  readonly name: string;
  readonly request: WsmanRequest;
  readonly parse: (reply: WsmanReply) => T;

  constructor(name: string, request: WsmanRequest, parse: (reply: WsmanReply) => T) {
    this.name = name;
    this.request = request;
    this.parse = parse;
  }

  async run(exchange: Exchange): Promise<T> {
    return this.parse(await exchange(this.request));
  }
}

export function single<T>(name: string, request: WsmanRequest, parse: (reply: WsmanReply) => T): SingleOperation<T> {
  return new Single(name, request, parse);
}

/** WS-Transfer Get of a (singleton, or selected) instance. */
export function getCall(className: string, selectors?: readonly Selector[]): WsmanCall {
  const resourceUri = uriOf(className);
  // Two literals, not a conditional spread (V8 copies a spread on its slow path).
  return selectors
    ? { kind: 'call', action: ACTION.get, resourceUri, selectors, body: '', idempotent: true }
    : { kind: 'call', action: ACTION.get, resourceUri, body: '', idempotent: true };
}

/** A method call: Action = ResourceURI/Method, body `<Method>_INPUT` (§5). */
export function methodCall(
  className: string,
  method: string,
  params: readonly (readonly [string, Value])[] = [],
): WsmanCall {
  const uri = uriOf(className);
  return {
    kind: 'call',
    action: methodAction(uri, method),
    resourceUri: uri,
    body: methodInput(uri, method, params),
    idempotent: false,
  };
}

/** `<Method>_OUTPUT` of a reply with ReturnValue checked (AmtError when non-zero). */
export function methodOutput(reply: WsmanReply, request: WsmanCall, method: string): XmlValue {
  const output = requireChild(reply.body, `${method}_OUTPUT`, 'reply Body');
  checkReturnValue(output, request.action);
  return output;
}

/**
 * A method with no output besides ReturnValue. Resolves to the ReturnValue (always 0); a
 * non-zero one rejects with AmtError.
 */
export function voidMethod(
  className: string,
  method: string,
  params: readonly (readonly [string, Value])[] = [],
): SingleOperation<number> {
  const request = methodCall(className, method, params);
  return single(`${className}.${method}`, request, (reply) => {
    methodOutput(reply, request, method);
    return 0;
  });
}

/** A CIM instance as read: its properties in document order, values decoded. */
export interface Instance {
  readonly className: string;
  readonly properties: readonly (readonly [string, InstanceValue])[];
}

export type InstanceValue = string | readonly InstanceValue[] | { readonly [name: string]: InstanceValue };

function toInstanceValue(v: XmlValue): InstanceValue {
  if (typeof v === 'string') return decodeXml(v);
  if (Array.isArray(v)) return (v as readonly XmlValue[]).map(toInstanceValue);
  const obj = v as Record<string, XmlValue>;
  const names = elementNames(obj);
  if (names.length === 0) {
    const t = obj['#text'];
    return typeof t === 'string' ? decodeXml(t) : '';
  }
  const out: Record<string, InstanceValue> = {};
  for (const n of names) out[n] = toInstanceValue(obj[n] as XmlValue);
  return out;
}

/** Reads `<ClassName>` out of a Get/Put reply body. */
export function readInstance(body: XmlValue, className: string): Instance {
  const node = requireChild(body, className, 'reply Body');
  if (!isObject(node)) throw malformedReply(`${className} is empty`);
  const nil = attribute(node, 'nil');
  if (nil === 'true') throw malformedReply(`${className} is nil`);
  return {
    className,
    properties: elementNames(node).map((name) => [name, toInstanceValue(node[name] as XmlValue)] as const),
  };
}

export function property(instance: Instance, name: string): InstanceValue | undefined {
  return instance.properties.find(([n]) => n === name)?.[1];
}

export function stringProperty(instance: Instance, name: string): string | undefined {
  const v = property(instance, name);
  return typeof v === 'string' ? v : undefined;
}

function instanceValueXml(name: string, value: InstanceValue): string {
  if (typeof value === 'string') return `<h:${name}>${xmlEscape(value)}</h:${name}>`;
  if (Array.isArray(value)) return (value as readonly InstanceValue[]).map((v) => instanceValueXml(name, v)).join('');
  let inner = '';
  for (const [n, v] of Object.entries(value as Record<string, InstanceValue>)) inner += instanceValueXml(n, v);
  return `<h:${name}>${inner}</h:${name}>`;
}

/**
 * The body of a Put: the whole instance as read, in its order, with `changes` applied (a Put
 * replaces the instance, so every property must be sent back). Changes to properties the
 * instance did not have are appended.
 */
export function putBody(instance: Instance, changes: Readonly<Record<string, Value>>): string {
  const changed = new Set(Object.keys(changes));
  let out = `<h:${instance.className} xmlns:h="${uriOf(instance.className)}">`;
  for (const [name, value] of instance.properties) {
    out += changed.has(name) ? fieldXml(name, changes[name] as Value) : instanceValueXml(name, value);
    changed.delete(name);
  }
  for (const name of changed) out += fieldXml(name, changes[name] as Value);
  return `${out}</h:${instance.className}>`;
}
