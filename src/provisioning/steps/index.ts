import type { StepName } from '../plan.ts';
import { adminCredentialsStep } from './admin-credentials.ts';
import { commitStep } from './commit.ts';
import { factsStep } from './facts.ts';
import { hostDomainStep } from './host-domain.ts';
import { mebxPasswordStep } from './mebx-password.ts';
import { renewPskStep } from './renew-psk.ts';
import type { Step } from './step.ts';
import { timeSyncStep } from './time-sync.ts';
import { tlsStep } from './tls.ts';

/** Every step but verify, which the runner drives itself (it decides what a commit did). */
export const STEPS: Readonly<Record<Exclude<StepName, 'verify'>, Step>> = {
  facts: factsStep,
  'admin-credentials': adminCredentialsStep,
  'mebx-password': mebxPasswordStep,
  'time-sync': timeSyncStep,
  'host-domain': hostDomainStep,
  tls: tlsStep,
  'renew-psk': renewPskStep,
  commit: commitStep,
};
