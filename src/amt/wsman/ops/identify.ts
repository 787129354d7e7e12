import { single, type SingleOperation } from '../operation.ts';
import { child, children, requireChild, text } from '../parse.ts';

/** WS-Management Identify (DSP0226 §11): unauthenticated on many stacks; AMT names itself here. */
export interface Identity {
  readonly protocolVersion: string;
  readonly productVendor: string;
  readonly productVersion: string;
  readonly dashVersion: string | undefined;
  readonly securityProfiles: readonly string[];
}

/** Two identity namespaces are in use; the parser matches the local name `IdentifyResponse` only. */
export function identify(): SingleOperation<Identity> {
  return single('Identify', { kind: 'identify' }, (reply) => {
    const r = requireChild(reply.body, 'IdentifyResponse', 'reply Body');
    return {
      protocolVersion: text(child(r, 'ProtocolVersion')) ?? '',
      productVendor: text(child(r, 'ProductVendor')) ?? '',
      productVersion: text(child(r, 'ProductVersion')) ?? '',
      dashVersion: text(child(r, 'DASHVersion')),
      securityProfiles: children(child(r, 'SecurityProfiles'), 'SecurityProfileName')
        .map((p) => text(p))
        .filter((p): p is string => p !== undefined),
    };
  });
}
