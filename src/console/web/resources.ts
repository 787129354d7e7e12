/**
 * The REST API's resources as the console reads them (docs/api.md; the OpenAPI document at
 * /openapi.json is the contract). Only the fields the console uses are typed strictly.
 */

export const PSK_STATES = ['available', 'exported', 'in_use', 'consumed', 'revoked', 'transferred'] as const;
export type PskState = (typeof PSK_STATES)[number];
export type PskCounts = Record<PskState, number>;

export const DEVICE_STATES = ['provisioning', 'provisioned', 'failed', 'unverified'] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export type Permission =
  | 'read'
  | 'history.read'
  | 'audit.read'
  | 'psk.write'
  | 'psk.export'
  | 'secret.reveal'
  | 'profile.write'
  | 'device.write'
  | 'token.manage'
  | 'metrics.read';

export interface Me {
  readonly name: string;
  readonly role: string;
  readonly grants: readonly string[];
  readonly permissions: readonly Permission[];
}

export interface Page<T, C> {
  readonly items: readonly T[];
  readonly next: C | null;
}

export interface Psk {
  readonly id: number;
  readonly pid: string;
  readonly batch: string;
  readonly state: PskState;
  readonly priorState: PskState | null;
  readonly deviceUuid: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface Batch {
  readonly name: string;
  readonly createdAt: string;
  readonly profile: string | null;
  readonly counts: PskCounts;
  readonly total: number;
}

export interface Certificate {
  readonly fingerprint: string | null;
  readonly notAfter: string | null;
  readonly pem?: string;
}

export interface Device {
  readonly uuid: string;
  readonly state: DeviceState;
  readonly address: string | null;
  readonly amtVersion: string | null;
  readonly hostName: string | null;
  readonly domainName: string | null;
  readonly profile: string | null;
  readonly adminUser: string | null;
  readonly adminPasswordEscrowed: boolean;
  readonly pid: string | null;
  readonly certificate: Certificate | null;
  readonly lastJobId: number | null;
  readonly provisionedAt: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface DeviceDetail extends Device {
  readonly history?: readonly AuditEntry[];
}

export interface Job {
  readonly id: number;
  readonly deviceUuid: string;
  readonly pid: string;
  readonly address: string;
  readonly profile: string;
  readonly state: JobState;
  readonly step: string | null;
  readonly attempts: number;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly restarts: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly finishedAt: string | null;
}

export type Scalar = string | number | boolean | null;

export interface AuditEntry {
  readonly seq: number;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly pids: readonly string[];
  readonly detail: Readonly<Record<string, Scalar>>;
  readonly hash: string;
}

export type AuditVerify =
  | { readonly ok: true; readonly entries: number; readonly headSeq: number; readonly headHash: string }
  | { readonly ok: false; readonly entries: number; readonly brokenSeq: number; readonly reason: string };

export interface Task {
  readonly id: string;
  readonly kind: string;
  readonly state: 'running' | 'succeeded' | 'failed' | 'cancelled';
  readonly done: number;
  readonly total: number;
  readonly result: Readonly<Record<string, Scalar>> | null;
  readonly error: { readonly code: string; readonly detail: string } | null;
}

export const SECRET_NAMES = ['currentMebxPassword', 'adminPassword', 'newMebxPassword'] as const;
export type SecretName = (typeof SECRET_NAMES)[number];

export interface ProfileSettings {
  adminUser: string;
  adminPassword: 'random' | 'fixed';
  mebxPassword: 'keep' | 'random' | 'fixed';
  hostNamePattern: string;
  domainName: string;
  timeSync: boolean;
  tls: boolean;
  certificateValidityDays: number;
  renewPsk: boolean;
  onNoRenewalPsk: 'fail' | 'skip';
}

export interface Profile {
  readonly name: string;
  readonly settings: ProfileSettings;
  readonly secretsSet: Readonly<Record<SecretName, boolean>>;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface ImportResult {
  readonly format: 'csv' | 'bundle' | 'setup-bin';
  readonly outcome: string;
  readonly records: number;
  readonly inserted: number;
  readonly duplicates: number;
  readonly bundleId?: string;
  readonly sourceName?: string;
  readonly unconsumed?: number;
  readonly consumed?: readonly {
    readonly number: number;
    readonly pid: string | null;
    readonly state: string | null;
  }[];
}

/** Live events of GET /api/v1/events (docs/api.md, "Live events"). */
export interface JobEvent {
  readonly jobId: number;
  readonly deviceUuid: string;
  readonly state: JobState;
  readonly step: string | null;
  readonly attempts: number;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
}

export interface DeviceEvent {
  readonly deviceUuid: string;
  readonly state: 'provisioned' | 'failed';
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
}

export interface CountsEvent {
  readonly counts: PskCounts;
  readonly total: number;
}

/** Provisioning steps in plan order (src/provisioning/plan.ts); a profile may skip some. */
export const STEPS = [
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
