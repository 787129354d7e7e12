import { el, envelope, faultEnvelope, MessageIds, renderEpr, renderProps } from './envelope.ts';
import { WsmanFault } from './fault.ts';
import { ACTION, NS } from './namespaces.ts';
import type { Selector, WsmanRequest } from './request.ts';
import { MethodInput, type Instance, type ResourceClass } from './resource.ts';
import { child, escapeXml, path } from './xml.ts';

export interface DispatchResult {
  status: 200 | 400 | 500;
  xml: string;
  /** Answer with `Connection: close` (CommitChanges, Unprovision...). */
  closeSession: boolean;
}

/** What Identify reports (DSP0217 IdentifyResponse plus AMT's DASHVersion). */
export interface IdentifyInfo {
  productVendor: string;
  productVersion: string;
  dashVersion: string;
}

interface OpenEnumeration {
  cls: ResourceClass;
  items: Instance[];
  pos: number;
}

/** Open enumeration contexts are few on AMT; the oldest is dropped past this many. */
const MAX_OPEN_ENUMERATIONS = 32;

/** Index of a method in a request: the Action is the class ResourceURI + "/" + method name (protocol.md §5). */
export interface MethodCall {
  cls: ResourceClass;
  method: string;
}

/**
 * Routes a parsed request to a resource class by ResourceURI and Action, and writes the reply
 * envelope. Knows WS-Transfer, WS-Enumeration, methods and Identify; knows nothing of AMT state.
 */
export class WsmanDispatcher {
  readonly #classes = new Map<string, ResourceClass>();
  readonly #enumerations = new Map<string, OpenEnumeration>();
  #nextContext = 0;

  constructor(
    classes: readonly ResourceClass[],
    private readonly identify: () => IdentifyInfo,
    private readonly messageIds = new MessageIds(),
  ) {
    for (const c of classes) this.#classes.set(c.resourceUri, c);
  }

  /** Forget open enumerations (a reboot). */
  reset(): void {
    this.#enumerations.clear();
  }

  classFor(req: WsmanRequest): ResourceClass | undefined {
    return this.#classes.get(req.resourceUri.trim());
  }

  methodCall(req: WsmanRequest): MethodCall | undefined {
    const cls = this.classFor(req);
    const action = req.action.trim();
    if (cls === undefined || !action.startsWith(`${cls.resourceUri}/`)) return undefined;
    const method = action.slice(cls.resourceUri.length + 1);
    return cls.methods?.[method] === undefined ? undefined : { cls, method };
  }

  async dispatch(req: WsmanRequest): Promise<DispatchResult> {
    try {
      if (req.isIdentify) return this.identifyReply();
      return await this.#route(req);
    } catch (e) {
      if (e instanceof WsmanFault) return this.faultReply(e, req.messageId);
      throw e;
    }
  }

  faultReply(fault: WsmanFault, relatesTo: string): DispatchResult {
    return {
      status: fault.httpStatus,
      xml: faultEnvelope(fault, relatesTo, this.messageIds.next()),
      // AMT closes the connection after a fault reply.
      closeSession: true,
    };
  }

  /** A method reply carrying only this ReturnValue (a fault hook, or a method refused before it ran). */
  returnValueReply(req: WsmanRequest, call: MethodCall, returnValue: number): DispatchResult {
    return this.#methodReply(req, call, { returnValue });
  }

  async #route(req: WsmanRequest): Promise<DispatchResult> {
    const action = req.action.trim();
    if (action === '') throw new WsmanFault('MessageInformationHeaderRequired', 'The request has no Action.');
    const cls = this.classFor(req);
    if (cls === undefined) throw new WsmanFault('DestinationUnreachable');
    switch (action) {
      case ACTION.get:
        return this.#reply(
          req,
          cls,
          `${ACTION.get}Response`,
          this.#instanceXml(cls, this.#resolve(cls, req.selectors)),
        );
      case ACTION.put: {
        if (cls.put === undefined) throw new WsmanFault('ActionNotSupported');
        const updated = cls.put(this.#resolve(cls, req.selectors), this.#body(req));
        return this.#reply(req, cls, `${ACTION.put}Response`, this.#instanceXml(cls, updated));
      }
      case ACTION.create: {
        if (cls.create === undefined) throw new WsmanFault('ActionNotSupported');
        const epr = cls.create(this.#body(req));
        return this.#reply(req, cls, `${ACTION.create}Response`, el('g:ResourceCreated', renderEpr(epr)), {
          g: NS.transfer,
        });
      }
      case ACTION.delete: {
        if (cls.delete === undefined) throw new WsmanFault('ActionNotSupported');
        cls.delete(this.#resolve(cls, req.selectors));
        return this.#reply(req, cls, `${ACTION.delete}Response`, '');
      }
      case ACTION.enumerate:
        return this.#enumerate(req, cls);
      case ACTION.pull:
        return this.#pull(req, cls);
      case ACTION.release: {
        const ctx = path(req.body, 'EnumerationContext')?.text ?? '';
        this.#enumerations.delete(ctx);
        return this.#reply(req, cls, `${ACTION.release}Response`, '');
      }
    }
    const call = this.methodCall(req);
    if (call === undefined) throw new WsmanFault('ActionNotSupported');
    return this.#invoke(req, call);
  }

  async #invoke(req: WsmanRequest, call: MethodCall): Promise<DispatchResult> {
    const handler = call.cls.methods?.[call.method];
    if (handler === undefined) throw new WsmanFault('ActionNotSupported');
    // The body is `<Method>_INPUT`; methods without parameters are also accepted with an empty Body.
    const body = req.body;
    if (body !== undefined && body.name !== `${call.method}_INPUT`) {
      throw new WsmanFault('SchemaValidationError', `Expected ${call.method}_INPUT in the body.`);
    }
    const result = await handler(new MethodInput(body));
    return this.#methodReply(req, call, result);
  }

  #methodReply(
    req: WsmanRequest,
    call: MethodCall,
    result: { returnValue: number; output?: Parameters<typeof renderProps>[1]; closeSession?: boolean },
  ): DispatchResult {
    const body = el(
      `g:${call.method}_OUTPUT`,
      renderProps('g', [...(result.output ?? []), ['ReturnValue', result.returnValue]]),
    );
    const reply = this.#reply(req, call.cls, `${req.action.trim()}Response`, body);
    return { ...reply, closeSession: result.closeSession === true && result.returnValue === 0 };
  }

  #body(req: WsmanRequest): NonNullable<WsmanRequest['body']> {
    if (req.body === undefined) throw new WsmanFault('SchemaValidationError', 'The body is empty.');
    return req.body;
  }

  #resolve(cls: ResourceClass, selectors: readonly Selector[]): Instance {
    const all = cls.instances();
    if (selectors.length === 0) {
      const only = all[0];
      if (all.length === 1 && only !== undefined) return only;
      throw new WsmanFault('InvalidSelectors', all.length === 0 ? 'No instance exists.' : 'Selectors are required.');
    }
    const found = all.find((inst) =>
      inst.matches !== undefined
        ? inst.matches(selectors)
        : selectors.every((s) => s.value !== undefined && inst.keys[s.name] === s.value),
    );
    if (found === undefined) throw new WsmanFault('InvalidSelectors');
    return found;
  }

  #instanceXml(cls: ResourceClass, inst: Instance): string {
    return el(`g:${cls.className}`, renderProps('g', inst.properties));
  }

  #reply(
    req: WsmanRequest,
    cls: ResourceClass,
    action: string,
    body: string,
    namespaces: Readonly<Record<string, string>> = { g: cls.resourceUri },
  ): DispatchResult {
    return {
      status: 200,
      xml: envelope(
        { action, relatesTo: req.messageId, resourceUri: cls.resourceUri, namespaces, body },
        this.messageIds.next(),
      ),
      closeSession: false,
    };
  }

  #newContext(entry: OpenEnumeration): string {
    if (this.#enumerations.size >= MAX_OPEN_ENUMERATIONS) {
      const oldest = this.#enumerations.keys().next().value;
      if (oldest !== undefined) this.#enumerations.delete(oldest);
    }
    // AMT's contexts look like `14000000-0000-0000-0000-000000000000`.
    const id = `${(++this.#nextContext).toString(16).toUpperCase().padStart(8, '0')}-0000-0000-0000-000000000000`;
    this.#enumerations.set(id, entry);
    return id;
  }

  #itemsXml(cls: ResourceClass, items: readonly Instance[]): string {
    return items.map((i) => el(`h:${cls.className}`, renderProps('h', i.properties))).join('');
  }

  #enumerate(req: WsmanRequest, cls: ResourceClass): DispatchResult {
    const items = cls.instances();
    // DSP0226 §8.2.3 optimized enumeration: the first items come back in the EnumerateResponse.
    const optimize = child(req.body, 'OptimizeEnumeration') !== undefined;
    const ns = { g: NS.enumeration, h: cls.resourceUri };
    if (!optimize) {
      const ctx = this.#newContext({ cls, items, pos: 0 });
      return this.#reply(
        req,
        cls,
        `${ACTION.enumerate}Response`,
        el('g:EnumerateResponse', el('g:EnumerationContext', ctx)),
        ns,
      );
    }
    const max = Number(child(req.body, 'MaxElements')?.text ?? '1');
    const n = Number.isInteger(max) && max > 0 ? max : 1;
    const first = items.slice(0, n);
    const done = n >= items.length;
    const ctx = done ? undefined : this.#newContext({ cls, items, pos: n });
    const inner =
      (ctx === undefined ? '' : el('g:EnumerationContext', ctx)) +
      el('c:Items', this.#itemsXml(cls, first)) +
      (done ? el('c:EndOfSequence', '') : '');
    return this.#reply(req, cls, `${ACTION.enumerate}Response`, el('g:EnumerateResponse', inner), ns);
  }

  #pull(req: WsmanRequest, cls: ResourceClass): DispatchResult {
    const pull = req.body;
    if (pull?.name !== 'Pull') throw new WsmanFault('SchemaValidationError', 'Expected Pull in the body.');
    const ctx = child(pull, 'EnumerationContext')?.text ?? '';
    const open = this.#enumerations.get(ctx);
    if (open === undefined || open.cls !== cls) throw new WsmanFault('InvalidEnumerationContext');
    const maxText = child(pull, 'MaxElements')?.text;
    // WS-Enumeration: MaxElements defaults to 1.
    const max = maxText === undefined ? 1 : Number(maxText);
    if (!Number.isInteger(max) || max < 1)
      throw new WsmanFault('SchemaValidationError', 'MaxElements must be 1 or more.');
    const batch = open.items.slice(open.pos, open.pos + max);
    open.pos += batch.length;
    const done = open.pos >= open.items.length;
    if (done) this.#enumerations.delete(ctx);
    const inner =
      (done ? '' : el('g:EnumerationContext', ctx)) +
      el('g:Items', this.#itemsXml(cls, batch)) +
      (done ? el('g:EndOfSequence', '') : '');
    return this.#reply(req, cls, `${ACTION.pull}Response`, el('g:PullResponse', inner), {
      g: NS.enumeration,
      h: cls.resourceUri,
    });
  }

  identifyReply(): DispatchResult {
    const info = this.identify();
    const body = el(
      'b:IdentifyResponse',
      el('b:ProtocolVersion', NS.wsman) +
        el('b:ProductVendor', escapeXml(info.productVendor)) +
        el('b:ProductVersion', escapeXml(info.productVersion)) +
        el('c:DASHVersion', escapeXml(info.dashVersion)) +
        el(
          'b:SecurityProfiles',
          el('b:SecurityProfileName', 'http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/digest') +
            el('b:SecurityProfileName', 'http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/digest'),
        ),
    );
    // DSP0217: the Identify response carries no addressing headers.
    const xml =
      '<?xml version="1.0" encoding="UTF-8"?>' +
      `<a:Envelope xmlns:a="${NS.soap}" xmlns:b="${NS.wsmid}" xmlns:c="${NS.dash}">` +
      el('a:Header', '') +
      el('a:Body', body) +
      '</a:Envelope>';
    return { status: 200, xml, closeSession: false };
  }
}
