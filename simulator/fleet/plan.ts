import { ScsError } from '../../src/errors.ts';
import type { PskPair } from '../../src/psk/formats/pair.ts';
import type { DeviceSetup } from '../device/setup.ts';
import { planFaults, type DeviceFaults, type FaultSpec } from './faults.ts';
import { deviceAddress, deviceDigestRealm, deviceHostName, deviceUuid, wrongPps } from './identity.ts';

/**
 * Default MEBx password of fleet devices. In setup mode it is also the `admin` Digest password
 * (protocol.md §6), so the SCS must be configured with it. It passes AMT's strong-password rule
 * (8-32 characters, upper, lower, digit, special), as a technician-set MEBx password must.
 */
export const DEFAULT_FLEET_MEBX_PASSWORD = 'P@ssw0rd';
/** The factory MEBx password; a device still on it says AdminCredentialsSet = 0 in its hello. */
export const FACTORY_MEBX_PASSWORD = 'admin';

/** Everything one worker needs to run device `index`; crosses to worker processes as JSON. */
export interface DevicePlan {
  index: number;
  address: string;
  /** Holds the PPS in clear: it goes to the device over a local IPC pipe, never to a log or file. */
  setup: DeviceSetup;
  /** The PID from the PSK file (the device's PID until it is given a new one). */
  csvPid: string;
  faults: DeviceFaults;
  wrongPsk: boolean;
  /** Fault clauses that picked this device, as written. */
  applied: string[];
}

export interface FleetPlanOptions {
  devices: number;
  psks: readonly PskPair[];
  seed: string;
  faults?: FaultSpec;
  latencyMs?: number;
  mebxPassword: string;
  amtVersion?: string;
  addressBase: string;
  domainName?: string;
}

export function planFleet(opts: FleetPlanOptions): DevicePlan[] {
  if (!Number.isInteger(opts.devices) || opts.devices < 1) {
    throw new ScsError('SCS_SIM_CONFIG_INVALID', `the fleet needs 1 or more devices, got ${opts.devices}`);
  }
  if (opts.psks.length < opts.devices) {
    throw new ScsError(
      'SCS_SIM_CONFIG_INVALID',
      `${opts.devices} devices need ${opts.devices} PID/PPS pairs; the PSK file has ${opts.psks.length}`,
    );
  }
  // Fail on a bad base or a fleet that runs past 127/8 before anything starts.
  deviceAddress(opts.addressBase, opts.devices - 1);
  const faults = planFaults(opts.faults ?? { clauses: [] }, {
    seed: opts.seed,
    devices: opts.devices,
    ...(opts.latencyMs === undefined ? {} : { latencyMs: opts.latencyMs }),
  });
  return faults.map((f, index) => {
    const psk = opts.psks[index] as PskPair;
    const pps = psk.pps.reveal();
    const setup: DeviceSetup = {
      uuid: deviceUuid(opts.seed, index),
      pid: psk.pid,
      pps: f.wrongPsk ? wrongPps(opts.seed, index, pps) : pps,
      mebxPassword: opts.mebxPassword,
      hostName: deviceHostName(index),
      domainName: opts.domainName ?? '',
      digestRealm: deviceDigestRealm(opts.seed, index),
      provisioningState: 'In',
      ...(opts.amtVersion === undefined ? {} : { amtVersion: opts.amtVersion }),
    };
    return {
      index,
      address: deviceAddress(opts.addressBase, index),
      setup,
      csvPid: psk.pid,
      faults: f.faults,
      wrongPsk: f.wrongPsk,
      applied: f.applied,
    };
  });
}
