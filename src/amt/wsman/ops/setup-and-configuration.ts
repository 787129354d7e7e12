import { formatUuid } from '../../../hello/uuid.ts';
import type { Pid } from '../../../psk/pid.ts';
import type { Pps } from '../../../psk/pps.ts';
import type { Secret } from '../../../secret.ts';
import {
  getCall,
  methodCall,
  methodOutput,
  readInstance,
  single,
  stringProperty,
  voidMethod,
  type Instance,
  type SingleOperation,
} from '../operation.ts';
import { malformedReply, requireText, toInt } from '../parse.ts';

/** AMT_SetupAndConfigurationService (protocol.md §6, §7). */
export const SETUP_AND_CONFIGURATION_SERVICE = 'AMT_SetupAndConfigurationService';

/** ProvisioningState (§7). */
export const ProvisioningState = { Pre: 0, In: 1, Post: 2 } as const;

/** ProvisioningMode values (§7): up to AMT 6.x 1 = Enterprise; from 7.0 1 = Admin Control, 4 = Client Control. */
export const ProvisioningMode = {
  Current: 0,
  Enterprise: 1,
  SmallBusiness: 2,
  RemoteConnectivity: 3,
  ClientControl: 4,
} as const;

export interface SetupAndConfiguration {
  readonly instance: Instance;
  readonly provisioningState: number;
  readonly provisioningMode: number | undefined;
  readonly provisioningStatus: number | undefined;
}

function optionalNumber(instance: Instance, name: string): number | undefined {
  const v = stringProperty(instance, name);
  return v === undefined || v === '' ? undefined : toInt(v, `${SETUP_AND_CONFIGURATION_SERVICE}.${name}`);
}

/** Get AMT_SetupAndConfigurationService: ProvisioningState must be 1 (In) to configure (§6 step 1). */
export function getSetupAndConfigurationService(): SingleOperation<SetupAndConfiguration> {
  return single(`${SETUP_AND_CONFIGURATION_SERVICE}.Get`, getCall(SETUP_AND_CONFIGURATION_SERVICE), (reply) => {
    const instance = readInstance(reply.body, SETUP_AND_CONFIGURATION_SERVICE);
    const provisioningState = optionalNumber(instance, 'ProvisioningState');
    if (provisioningState === undefined)
      throw malformedReply(`${SETUP_AND_CONFIGURATION_SERVICE} has no ProvisioningState`);
    return {
      instance,
      provisioningState,
      provisioningMode: optionalNumber(instance, 'ProvisioningMode'),
      provisioningStatus: optionalNumber(instance, 'ProvisioningStatus'),
    };
  });
}

/**
 * The AMT strong-password rule (§6 step 3): 8-32 characters with an uppercase letter, a
 * lowercase letter, a digit and a special character. The device answers 2054 otherwise; the
 * check here only saves a round trip.
 */
export function isStrongAmtPassword(password: string): boolean {
  return (
    password.length >= 8 &&
    password.length <= 32 &&
    /[A-Z]/.test(password) &&
    /[a-z]/.test(password) &&
    /[0-9]/.test(password) &&
    /[^A-Za-z0-9]/.test(password)
  );
}

/** SetMEBxPassword(Password) (§6 step 3). */
export function setMEBxPassword(password: Secret<string>): SingleOperation<number> {
  return voidMethod(SETUP_AND_CONFIGURATION_SERVICE, 'SetMEBxPassword', [['Password', password.reveal()]]);
}

/** SetTLSPSK(PID, PPS): the PSK the device keeps for later re-provisioning (§6 step 7; string parameters, a project choice). */
export function setTlsPsk(pid: Pid, pps: Secret<Pps>): SingleOperation<number> {
  return voidMethod(SETUP_AND_CONFIGURATION_SERVICE, 'SetTLSPSK', [
    ['PID', pid],
    ['PPS', pps.reveal()],
  ]);
}

/** CommitChanges(): pending settings take effect and the device becomes Post-provisioned (§6 step 8). */
export function commitChanges(): SingleOperation<number> {
  return voidMethod(SETUP_AND_CONFIGURATION_SERVICE, 'CommitChanges');
}

/** Unprovision(ProvisioningMode): full reset to factory (Pre); may answer 2076 BLOCKING_COMPONENT. */
export function unprovision(provisioningMode: number = ProvisioningMode.Enterprise): SingleOperation<number> {
  return voidMethod(SETUP_AND_CONFIGURATION_SERVICE, 'Unprovision', [['ProvisioningMode', provisioningMode]]);
}

/** PartialUnprovision(): back to In; keeps the admin ACL, the PSK and host/domain name (§6). */
export function partialUnprovision(): SingleOperation<number> {
  return voidMethod(SETUP_AND_CONFIGURATION_SERVICE, 'PartialUnprovision');
}

export interface DeviceUuid {
  /** §1c text form, comparable with Hello.uuid. */
  readonly uuid: string;
  readonly bytes: Buffer;
}

/** GetUuid(): the UUID as base64 of its 16 raw bytes, in the byte order the hello uses (§6). */
export function getUuid(): SingleOperation<DeviceUuid> {
  const request = methodCall(SETUP_AND_CONFIGURATION_SERVICE, 'GetUuid');
  return single(`${SETUP_AND_CONFIGURATION_SERVICE}.GetUuid`, request, (reply) => {
    const output = methodOutput(reply, request, 'GetUuid');
    const raw = requireText(output, 'UUID', 'GetUuid_OUTPUT');
    const bytes = Buffer.from(raw, 'base64');
    if (bytes.length !== 16 || !/^[A-Za-z0-9+/]+={0,2}$/.test(raw.trim())) {
      throw malformedReply(`GetUuid_OUTPUT.UUID is not base64 of 16 bytes`);
    }
    return { uuid: formatUuid(bytes), bytes };
  });
}
