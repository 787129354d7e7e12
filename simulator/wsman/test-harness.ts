import { generateKeyPairSync } from 'node:crypto';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import type { KeyPair, KeyPairProvider } from '../device/keystore.ts';
import { AmtModel, type ModelEvent } from '../device/model.ts';
import { resolveSetup, type DeviceSetup } from '../device/setup.ts';
import { amtClasses } from './classes/index.ts';
import { WsmanDispatcher, type DispatchResult } from './dispatcher.ts';
import { readRequest } from './request.ts';
import { child, parseXml, path, type XmlElement } from './xml.ts';

/**
 * Test support (not a test): an AMT model and dispatcher without sockets, fed raw request XML,
 * plus a few readers for replies. Used by the simulator's own unit tests.
 */
export const TEST_UUID = '4c4c4544-0035-5910-8051-b8c04f4e5a31';
export const TEST_MEBX = 'P@ssw0rd';

const pool: KeyPair[] = [];
/** Pre-generated RSA-2048 pairs, handed out round-robin (keygen is slow; tests need several distinct keys). */
export function pooledKeyPairs(size = 4): KeyPairProvider {
  while (pool.length < size) {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    pool.push({ publicKey, privateKey });
  }
  let next = 0;
  return (bits) => {
    if (bits !== 2048) throw new Error('the test pool holds 2048-bit keys');
    const pair = pool[next++ % size];
    if (pair === undefined) throw new Error('empty key pool');
    return Promise.resolve(pair);
  };
}

export interface Reply extends DispatchResult {
  doc: XmlElement;
  body: XmlElement | undefined;
}

export interface Harness {
  model: AmtModel;
  dispatcher: WsmanDispatcher;
  events: ModelEvent[];
  pid: string;
  pps: string;
  call(xml: string): Promise<Reply>;
}

/** `withPsk` false: a factory (Pre) device with no PID/PPS. */
export function harness(setup: Partial<DeviceSetup> = {}, now: () => number = Date.now, withPsk = true): Harness {
  const pid = generatePid();
  const pps = generatePps();
  const events: ModelEvent[] = [];
  const base = withPsk
    ? { uuid: TEST_UUID, pid, pps, mebxPassword: TEST_MEBX }
    : { uuid: TEST_UUID, mebxPassword: TEST_MEBX };
  const model = new AmtModel(resolveSetup({ ...base, ...setup }), {
    keyPairProvider: pooledKeyPairs(),
    clock: now,
    provisioningWindowMs: 6 * 3_600_000,
    onEvent: (e) => events.push(e),
  });
  const dispatcher = new WsmanDispatcher(amtClasses(model), () => ({
    productVendor: 'Intel Corporation',
    productVersion: 'AMT 6.2',
    dashVersion: '1.0.0',
  }));
  return {
    model,
    dispatcher,
    events,
    pid,
    pps,
    async call(xml) {
      const r = await dispatcher.dispatch(readRequest(parseXml(xml)));
      const doc = parseXml(r.xml);
      return { ...r, doc, body: child(doc, 'Body')?.children[0] };
    },
  };
}

/** Text at a path of local names below the reply Body's first element. */
export function text(reply: Reply, ...names: string[]): string | undefined {
  return path(reply.body, ...names)?.text;
}

export function header(reply: Reply, name: string): string | undefined {
  return path(reply.doc, 'Header', name)?.text;
}

/** The fault subcode value (e.g. `c:InvalidSelectors`), if the reply is a fault. */
export function faultSubcode(reply: Reply): string | undefined {
  return path(reply.doc, 'Body', 'Fault', 'Code', 'Subcode', 'Value')?.text;
}

export function returnValue(reply: Reply): number | undefined {
  const v = child(reply.body, 'ReturnValue')?.text;
  return v === undefined ? undefined : Number(v);
}

/** A request envelope in the layout most clients use; `body` is the Body's inner XML. */
export function envelopeXml(action: string, resourceUri: string, body: string, extraHeader = ''): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">' +
    `<s:Header><a:Action>${action}</a:Action><a:To>/wsman</a:To><w:ResourceURI>${resourceUri}</w:ResourceURI>` +
    '<a:MessageID>uuid:7</a:MessageID><a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>' +
    `<w:OperationTimeout>PT60S</w:OperationTimeout>${extraHeader}</s:Header><s:Body>${body}</s:Body></s:Envelope>`
  );
}

/** A method call the way wsman-messages writes one (parameters in the default namespace). */
export function methodXml(className: string, method: string, params: Record<string, string | number>): string {
  const base = className.startsWith('CIM_')
    ? 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/'
    : 'http://intel.com/wbem/wscim/1/amt-schema/1/';
  const uri = base + className;
  const inner = Object.entries(params)
    .map(([k, v]) => `<h:${k}>${String(v)}</h:${k}>`)
    .join('');
  return envelopeXml(`${uri}/${method}`, uri, `<h:${method}_INPUT xmlns:h="${uri}">${inner}</h:${method}_INPUT>`);
}
