import type { Secret } from '../../secret.ts';
import type { Pid } from '../pid.ts';
import type { Pps } from '../pps.ts';

/** One provisioning pre-shared key as the file codecs carry it: the PPS stays wrapped. */
export interface PskPair {
  readonly pid: Pid;
  readonly pps: Secret<Pps>;
}
