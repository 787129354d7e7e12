import type { ProfileSettings } from '../store/provisioning/profile.ts';

/**
 * The steps of protocol.md §6, named after it. `plan()` is pure: the profile and what is known
 * about the device decide which optional steps run; the order never changes.
 */
export const STEP_NAMES = [
  'facts',
  'admin-credentials',
  'mebx-password',
  'time-sync',
  'host-domain',
  'tls',
  'renew-psk',
  'commit',
  'verify',
] as const;
export type StepName = (typeof STEP_NAMES)[number];

export interface PlanInput {
  readonly profile: ProfileSettings;
}

/** Ordered steps for one device (§6 rows 1-9). */
export function plan(input: PlanInput): StepName[] {
  const { profile } = input;
  const steps: StepName[] = ['facts', 'admin-credentials'];
  if (profile.mebxPassword !== 'keep') steps.push('mebx-password');
  if (profile.timeSync) steps.push('time-sync');
  steps.push('host-domain');
  if (profile.tls) steps.push('tls');
  if (profile.renewPsk || !profile.tls) steps.push('renew-psk');
  steps.push('commit', 'verify');
  return steps;
}
