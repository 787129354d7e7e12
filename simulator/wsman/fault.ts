import { ACTION, NS } from './namespaces.ts';

/**
 * The SOAP faults the simulator raises (DSP0226 §14, WS-Addressing, WS-Enumeration), with the
 * namespace of each subcode, the fault Action AMT puts on it and the HTTP status it travels with
 * (Sender faults 400, Receiver faults 500, as captured from AMT firmware).
 */
const SUBCODES = {
  DestinationUnreachable: {
    ns: 'wsa',
    reason: 'No route can be determined to reach the destination role defined by the WSAddressing To.',
  },
  ActionNotSupported: { ns: 'wsa', reason: 'The action is not supported by the service.' },
  InvalidMessageInformationHeader: {
    ns: 'wsa',
    reason: 'A message information header is not valid and the message cannot be processed.',
  },
  MessageInformationHeaderRequired: { ns: 'wsa', reason: 'A required message information header is absent.' },
  InvalidSelectors: { ns: 'wsman', reason: 'The Selectors for the resource were not valid.' },
  AlreadyExists: { ns: 'wsman', reason: 'The sender attempted to create a resource which already exists.' },
  SchemaValidationError: { ns: 'wsman', reason: 'The supplied SOAP violates the corresponding XML Schema definition.' },
  InvalidParameter: { ns: 'wsman', reason: 'An operation parameter was not valid.' },
  AccessDenied: { ns: 'wsman', reason: 'The sender was not authorized to access the resource.' },
  InternalError: {
    ns: 'wsman',
    reason: 'The service cannot comply with the request due to internal processing errors.',
  },
  InvalidEnumerationContext: { ns: 'wsen', reason: 'The supplied enumeration context is invalid.' },
} as const;

export type FaultSubcode = keyof typeof SUBCODES;

export class WsmanFault extends Error {
  override readonly name = 'WsmanFault';
  readonly code: 'Sender' | 'Receiver';

  constructor(
    readonly subcode: FaultSubcode,
    /** Extra words after the standard reason; never a secret. */
    readonly detail?: string,
  ) {
    super(detail === undefined ? SUBCODES[subcode].reason : `${SUBCODES[subcode].reason} ${detail}`);
    this.code = subcode === 'InternalError' ? 'Receiver' : 'Sender';
  }

  get httpStatus(): 400 | 500 {
    return this.code === 'Receiver' ? 500 : 400;
  }

  /** The fault Action AMT uses: addressing faults, enumeration faults, else the WS-Man one. */
  get action(): string {
    const ns = SUBCODES[this.subcode].ns;
    if (ns === 'wsa') return ACTION.addressingFault;
    if (ns === 'wsen') return `${NS.enumeration}/fault`;
    return ACTION.wsmanFault;
  }

  /** Namespace of the subcode QName. */
  get subcodeNamespace(): string {
    const ns = SUBCODES[this.subcode].ns;
    return ns === 'wsa' ? NS.wsa : ns === 'wsen' ? NS.enumeration : NS.wsman;
  }
}
