import { ScsError } from '../../src/errors.ts';

/**
 * Fault hooks of one simulated device. The fleet parses `--faults` into these
 * (simulator/fleet/faults.ts); the device implements them. Semantics in docs/simulator.md.
 */
export interface DeviceFaults {
  /** Delay before every HTTP reply, 401s and faults included. */
  latencyMs?: number;
  /** Destroy the socket, without a reply, on the K-th WS-Man call of this device (1-based; Identify counts). */
  dropAtCall?: number;
  /** `method` answers ReturnValue `status` without running, for the first `times` calls (every call when absent). */
  methodStatus?: { method: string; status: number; times?: number };
  /** The first CommitChanges drops the session and reboots the device: pending settings lost, nothing committed. */
  rebootBeforeCommit?: boolean;
  /** The first CommitChanges commits, then the device drops the session without a reply and reboots (Post kept). */
  rebootAfterCommit?: boolean;
  /** Accept TCP on the TLS port but start the TLS handshake only after this long (every connection). */
  stallHandshakeMs?: number;
}

function nonNegativeInt(v: unknown, field: string, min = 0): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)) {
    throw new ScsError('SCS_SIM_CONFIG_INVALID', `faults: ${field} must be an integer of at least ${min}`);
  }
}

export function validateFaults(f: DeviceFaults): DeviceFaults {
  nonNegativeInt(f.latencyMs, 'latencyMs');
  nonNegativeInt(f.dropAtCall, 'dropAtCall', 1);
  nonNegativeInt(f.stallHandshakeMs, 'stallHandshakeMs');
  if (f.methodStatus !== undefined) {
    if (typeof f.methodStatus.method !== 'string' || f.methodStatus.method === '') {
      throw new ScsError('SCS_SIM_CONFIG_INVALID', 'faults: methodStatus.method must name a method');
    }
    nonNegativeInt(f.methodStatus.status, 'methodStatus.status');
    nonNegativeInt(f.methodStatus.times, 'methodStatus.times', 1);
  }
  return f;
}
