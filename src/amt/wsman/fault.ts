import { ScsError } from '../../errors.ts';
import { child, children, requireText, text, toInt, type WsmanReply, type XmlValue } from './parse.ts';

/**
 * The two ways a device says no: a SOAP fault (DSP0226 §14: Code/Value, Subcode/Value,
 * Reason/Text, Detail) and a method's non-zero ReturnValue, a PT_STATUS (protocol.md §5a).
 */

/** PT_STATUS names the project must know (protocol.md §5a). */
export const PT_STATUS = {
  0: 'SUCCESS',
  1: 'INTERNAL_ERROR',
  2: 'NOT_READY',
  3: 'INVALID_PT_MODE',
  16: 'NOT_PERMITTED',
  25: 'AUTHENTICATION_FAILED',
  32: 'INVALID_PROVISIONING_STATE',
  34: 'INVALID_TIME',
  36: 'INVALID_PARAMETER',
  38: 'FLASH_WRITE_LIMIT_EXCEEDED',
  42: 'INVALID_PID_FORMAT',
  43: 'INVALID_PPS_FORMAT',
  2054: 'INVALID_PASSWORD',
  2057: 'DATA_MISSING',
  2060: 'PKI_MISSING_KEYS',
  2062: 'INVALID_KEY',
  2063: 'INVALID_CERT',
  2064: 'CERT_KEY_NOT_MATCH',
  2066: 'UNSUPPORTED',
  2069: 'INVALID_CREDENTIALS',
  2070: 'INVALID_PASSPHRASE',
  2076: 'BLOCKING_COMPONENT',
  2081: 'USER_CONSENT_REQUIRED',
} as const satisfies Record<number, string>;

export type PtStatusName = (typeof PT_STATUS)[keyof typeof PT_STATUS];

export function ptStatusName(value: number): string {
  return (PT_STATUS as Record<number, string>)[value] ?? `UNKNOWN_${value}`;
}

/**
 * A method answered with a non-zero ReturnValue. Carries the raw number, its PT_STATUS name and
 * the Action, so callers can branch on `returnValue` (e.g. 2076 from Unprovision).
 */
export class AmtError extends ScsError {
  readonly returnValue: number;
  readonly status: string;
  readonly action: string;

  constructor(returnValue: number, action: string) {
    const status = ptStatusName(returnValue);
    const method = action.slice(action.lastIndexOf('/') + 1);
    super('SCS_WSMAN_RETURN_VALUE', `${method} returned ${returnValue} (${status})`, {
      details: { returnValue, status, action },
    });
    this.returnValue = returnValue;
    this.status = status;
    this.action = action;
  }
}

export function isAmtError(value: unknown, returnValue?: number): value is AmtError {
  return value instanceof AmtError && (returnValue === undefined || value.returnValue === returnValue);
}

/** Checks `<Method>_OUTPUT/ReturnValue`; returns it when 0, throws AmtError otherwise. */
export function checkReturnValue(output: XmlValue, action: string): number {
  const where = action.slice(action.lastIndexOf('/') + 1) + '_OUTPUT';
  const value = toInt(requireText(output, 'ReturnValue', where), `${where}.ReturnValue`);
  if (value !== 0) throw new AmtError(value, action);
  return value;
}

export interface WsmanFault {
  readonly code: string;
  readonly subcode: string | undefined;
  readonly reason: string | undefined;
  readonly detail: string | undefined;
}

/** The fault in a reply body, if there is one. */
export function readFault(reply: WsmanReply): WsmanFault | undefined {
  const fault = child(reply.body, 'Fault');
  if (fault === undefined) return undefined;
  const code = child(fault, 'Code');
  const reasonTexts = children(child(fault, 'Reason'), 'Text')
    .map((t) => text(t))
    .filter((t): t is string => t !== undefined);
  const detail = child(fault, 'Detail');
  return {
    code: text(child(code, 'Value')) ?? '',
    subcode: text(child(child(code, 'Subcode'), 'Value')),
    reason: reasonTexts[0],
    detail: detail === undefined ? undefined : flatten(detail).slice(0, 500) || undefined,
  };
}

function flatten(node: XmlValue): string {
  if (typeof node === 'string') return node;
  if (Array.isArray(node)) return (node as readonly XmlValue[]).map(flatten).join(' ');
  return Object.entries(node)
    .filter(([k]) => !k.startsWith('@_'))
    .map(([, v]) => flatten(v))
    .join(' ');
}

export function faultError(fault: WsmanFault, ctx: { action: string; httpStatus: number }): ScsError {
  const what = fault.subcode ?? fault.code;
  return new ScsError(
    'SCS_WSMAN_FAULT',
    `the device answered ${shortAction(ctx.action)} with a fault: ${what}${fault.reason ? ` (${fault.reason})` : ''}`,
    {
      details: {
        code: fault.code,
        subcode: fault.subcode ?? null,
        reason: fault.reason ?? null,
        detail: fault.detail ?? null,
        action: ctx.action,
        httpStatus: ctx.httpStatus,
      },
    },
  );
}

function shortAction(action: string): string {
  const parts = action.split('/');
  return parts.slice(-2).join('/');
}
