import { ACTION, NS, resourceUri, xmlEscape, type WsmanCall } from './envelope.ts';
import type { Operation } from './operation.ts';
import { child, children, malformedReply, requireChild, requireText, text, type XmlValue } from './parse.ts';

/**
 * WS-Enumeration (DSP0226 §8): Enumerate returns an EnumerationContext; Pull with it returns
 * Items and either EndOfSequence or the context to pull with next. The limits are the ones
 * Intel's own stack sends (MaxElements 999, MaxCharacters 99999).
 */
export const MAX_ELEMENTS = 999;
export const MAX_CHARACTERS = 99999;
/** A device that never says EndOfSequence must not hold a job forever. */
export const MAX_PULLS = 1000;

export function enumerateCall(className: string): WsmanCall {
  return {
    kind: 'call',
    action: ACTION.enumerate,
    resourceUri: resourceUri(className),
    body: `<n:Enumerate xmlns:n="${NS.enumeration}"/>`,
    idempotent: true,
  };
}

export function pullCall(className: string, context: string): WsmanCall {
  return {
    kind: 'call',
    action: ACTION.pull,
    resourceUri: resourceUri(className),
    body:
      `<n:Pull xmlns:n="${NS.enumeration}"><n:EnumerationContext>${xmlEscape(context)}</n:EnumerationContext>` +
      `<n:MaxElements>${MAX_ELEMENTS}</n:MaxElements><n:MaxCharacters>${MAX_CHARACTERS}</n:MaxCharacters></n:Pull>`,
    idempotent: true,
  };
}

/** Enumerates every instance of a class, following the context until EndOfSequence. */
export function enumerate<T>(className: string, parseItem: (node: XmlValue) => T): Operation<T[]> {
  return {
    name: `${className}.Enumerate`,
    async run(exchange) {
      const first = await exchange(enumerateCall(className));
      let context = requireText(
        requireChild(first.body, 'EnumerateResponse', 'reply Body'),
        'EnumerationContext',
        'EnumerateResponse',
      );
      const items: T[] = [];
      for (let pulls = 0; pulls < MAX_PULLS; pulls++) {
        const reply = await exchange(pullCall(className, context));
        const response = requireChild(reply.body, 'PullResponse', 'reply Body');
        for (const node of children(child(response, 'Items'), className)) items.push(parseItem(node));
        if (child(response, 'EndOfSequence') !== undefined) return items;
        const next = text(child(response, 'EnumerationContext'));
        if (next === undefined || next === '')
          throw malformedReply('PullResponse has neither EndOfSequence nor an EnumerationContext');
        context = next;
      }
      throw malformedReply(`no EndOfSequence after ${MAX_PULLS} Pulls of ${className}`);
    },
  };
}
