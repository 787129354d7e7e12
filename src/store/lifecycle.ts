/**
 * The life of a PSK (docs/psk-database.md, "States"):
 *
 *   available ──export──> exported
 *   available | exported ──hello──> in_use ──commit──> consumed
 *                                   in_use ──failure──> back to available | exported
 *   available | exported | in_use ──> revoked
 *   available | exported ──bundle to another SCS──> transferred
 *
 * consumed, revoked and transferred are final: the PSK is never handed out again.
 */
export const PSK_STATES = ['available', 'exported', 'in_use', 'consumed', 'revoked', 'transferred'] as const;
export type PskState = (typeof PSK_STATES)[number];

/** Allowed sources of each target state. */
const ALLOWED_FROM: Readonly<Record<PskState, readonly PskState[]>> = {
  available: ['in_use'],
  exported: ['available', 'in_use'],
  in_use: ['available', 'exported'],
  consumed: ['in_use'],
  revoked: ['available', 'exported', 'in_use'],
  transferred: ['available', 'exported'],
};

export function canTransition(from: PskState, to: PskState): boolean {
  return ALLOWED_FROM[to].includes(from);
}

export function isPskState(value: unknown): value is PskState {
  return typeof value === 'string' && (PSK_STATES as readonly string[]).includes(value);
}

export function emptyCounts(): Record<PskState, number> {
  return { available: 0, exported: 0, in_use: 0, consumed: 0, revoked: 0, transferred: 0 };
}
