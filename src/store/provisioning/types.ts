import type { CaMaterial } from '../../crypto/ca.ts';
import type { Pid } from '../../psk/pid.ts';
import type { Pps } from '../../psk/pps.ts';
import type { Secret } from '../../secret.ts';
import type { AuditEntry } from '../store.ts';
import type { ProfileInput, ProfileRow, ProfileSecretValues } from './profile.ts';

/**
 * What provisioning keeps in the store (schema version 2, docs/provisioning.md): profiles,
 * devices, jobs, escrowed device passwords and the SCS CA. Every state change is audited in
 * the same transaction (actions device.*, job.*, profile.*).
 */

export const DEVICE_STATES = ['provisioning', 'provisioned', 'failed', 'unverified'] as const;
/**
 * provisioning: a job is running for it. provisioned: configured and verified Post.
 * failed: its last job failed before commit (it still holds its PSK and says hello again).
 * unverified: CommitChanges was sent but the outcome could not be confirmed.
 */
export type DeviceState = (typeof DEVICE_STATES)[number];

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export const ESCROW_PURPOSES = ['admin', 'mebx'] as const;
export type EscrowPurpose = (typeof ESCROW_PURPOSES)[number];

/** candidate: sealed before it was sent, not yet confirmed. active: the device uses it. retired: no longer. */
export const ESCROW_STATUSES = ['candidate', 'active', 'retired'] as const;
export type EscrowStatus = (typeof ESCROW_STATUSES)[number];

export interface ActorContext {
  readonly actor: string;
}

// ---------------------------------------------------------------------------------------------
// Profiles

export interface ProfileRepository {
  list(): Promise<ProfileRow[]>;
  get(name: string): Promise<ProfileRow | undefined>;
  /** SCS_PROFILE_NOT_FOUND when absent. */
  require(name: string): Promise<ProfileRow>;
  /** The profile's sealed passwords, opened (for the runner; never printed). */
  secrets(name: string): Promise<ProfileSecretValues>;
  /** SCS_PROFILE_INVALID naming the field; SCS_PROFILE_CONFLICT when the name exists. */
  create(name: string, input: ProfileInput, context: ActorContext): Promise<ProfileRow>;
  /**
   * Changes the given fields. With `expectedVersion`, fails with SCS_PROFILE_CONFLICT when the
   * profile changed since it was read (optimistic concurrency); the version rises by one.
   */
  update(
    name: string,
    input: ProfileInput,
    context: ActorContext & { readonly expectedVersion?: number },
  ): Promise<ProfileRow>;
  /** Refuses `default` and profiles a batch is bound to (SCS_PROFILE_INVALID). */
  delete(name: string, context: ActorContext): Promise<void>;
  /** Binds a PSK batch to a profile (null: the server default). */
  bindBatch(batch: string, profile: string | null, context: ActorContext): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Devices

export interface DeviceRow {
  readonly uuid: string;
  readonly state: DeviceState;
  /** Source address of its last hello: where the server connects back to. */
  readonly address: string | null;
  readonly amtVersion: string | null;
  readonly hostName: string | null;
  readonly domainName: string | null;
  readonly profile: string | null;
  readonly adminUser: string | null;
  /** Credentials reference: the escrow row of the admin password the device uses. */
  readonly adminEscrowId: number | null;
  /** The escrow row of the MEBx password the server set, if it set one. */
  readonly mebxEscrowId: number | null;
  readonly certPem: string | null;
  /** Lowercase hex SHA-256 of the certificate DER. */
  readonly certFingerprint: string | null;
  readonly certNotAfter: Date | null;
  /** The PSK the device holds now (its renewed PSK after a provisioning with renewal). */
  readonly pid: Pid | null;
  readonly lastJobId: number | null;
  readonly provisionedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface DeviceFilter {
  readonly state?: DeviceState;
  /** Keyset paging by UUID. */
  readonly afterUuid?: string;
  /** Default 1000, at most 10,000. */
  readonly limit?: number;
}

/** Facts written when a device is confirmed provisioned (§6 step 9). */
export interface ProvisionedDevice {
  readonly address: string;
  readonly amtVersion: string | null;
  readonly hostName: string;
  readonly domainName: string;
  readonly profile: string;
  readonly adminUser: string;
  readonly adminEscrowId: number | null;
  readonly mebxEscrowId: number | null;
  readonly certPem: string | null;
  readonly certFingerprint: string | null;
  readonly certNotAfter: Date | null;
  readonly pid: Pid | null;
  readonly jobId: number;
}

export interface RevealedPassword {
  readonly uuid: string;
  readonly username: string;
  readonly password: Secret<string>;
  readonly escrowId: number;
}

export interface DeviceRepository {
  get(uuid: string): Promise<DeviceRow | undefined>;
  list(filter?: DeviceFilter): Promise<DeviceRow[]>;
  countByState(): Promise<Record<DeviceState, number>>;
  /** A job started for the device: creates the row or sets state `provisioning` (audited device.provisioning). */
  noteJob(
    uuid: string,
    facts: { readonly address: string; readonly profile: string; readonly jobId: number },
    context: ActorContext,
  ): Promise<void>;
  /** The device is confirmed Post: every fact stored, state `provisioned` (audited device.provisioned). */
  markProvisioned(uuid: string, facts: ProvisionedDevice, context: ActorContext): Promise<void>;
  /** Sets `failed` or `unverified` (audited device.<state>) with the job that decided it. */
  markState(
    uuid: string,
    state: 'failed' | 'unverified',
    facts: { readonly jobId: number; readonly code: string },
    context: ActorContext,
  ): Promise<void>;
  /** Audit entries that name the device, newest first. */
  history(uuid: string, limit?: number): Promise<AuditEntry[]>;
  /** The admin user and password the device uses; audited device.reveal_password. SCS_DEVICE_NOT_FOUND. */
  revealAdminPassword(uuid: string, context: ActorContext & { readonly reason?: string }): Promise<RevealedPassword>;
}

// ---------------------------------------------------------------------------------------------
// Jobs

/**
 * What a job needs to resume after a crash (docs/provisioning.md, "Resume"). Flat JSON; no
 * secrets (passwords are escrow ids, PSKs are PIDs).
 */
export interface JobData {
  /** The renewal PSK taken for this device (in_use for this job). */
  readonly newPid?: string;
  /** Escrow rows of the admin and MEBx passwords sent in this attempt. */
  readonly adminEscrowId?: number;
  readonly mebxEscrowId?: number;
  /** CommitChanges was (about to be) sent: the device may be Post now. */
  readonly commitSent?: boolean;
  /** The hello PSK was already in_use for this device when the job began (re-provisioning with a renewed PSK). */
  readonly pskWasInUse?: boolean;
  /** Renewal was skipped: no PSK left and the profile says skip. */
  readonly renewalSkipped?: boolean;
  readonly hostName?: string;
  readonly domainName?: string;
  readonly amtVersion?: string;
  readonly tls?: boolean;
  readonly certPem?: string;
  readonly certFingerprint?: string;
  readonly certNotAfter?: string;
  /** Create AMT_TLSCredentialContext found one from an earlier attempt: the certificate in use is read back at verification. */
  readonly tlsContextReused?: boolean;
  /** Times the job started over from the first step (a lost session, a device found still In after commit). */
  readonly restarts?: number;
  /** Admin user name the device will use after commit. */
  readonly adminUser?: string;
  /** The hello PSK's batch and the profile that batch is bound to (null: none), for the renewal PSK. */
  readonly batch?: string;
  readonly batchProfile?: string | null;
  /** hello AdminCredentialsSet (protocol.md §1a). */
  readonly adminCredentialsSet?: boolean;
}

export interface JobRow {
  readonly id: number;
  readonly deviceUuid: string;
  /** The PID of the hello that started the job. */
  readonly pid: Pid;
  readonly address: string;
  readonly profile: string;
  readonly state: JobState;
  /** The last step completed (or being run). */
  readonly step: string | null;
  readonly attempts: number;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly leaseOwner: string | null;
  readonly leaseUntil: Date | null;
  readonly data: JobData;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly finishedAt: Date | null;
}

export interface NewJob {
  readonly deviceUuid: string;
  readonly pid: Pid;
  readonly address: string;
  readonly profile: string;
  readonly data?: JobData;
  /** The node that will run it (docs/operations.md, "Leases"): no other node claims it before `until`. */
  readonly lease?: JobLease;
}

/** Who runs a job and until when, unless renewed (heartbeat). */
export interface JobLease {
  readonly owner: string;
  readonly until: Date;
}

export interface ClaimOptions {
  readonly owner: string;
  readonly until: Date;
  /** At most this many jobs (default: every claimable one). */
  readonly limit?: number;
  /**
   * Also take jobs leased to someone else whose lease has not expired. Only for a single-node
   * installation at start (SQLite): every lease in the database is then a dead process's.
   */
  readonly ignoreLeases?: boolean;
}

export interface JobFilter {
  readonly state?: JobState | readonly JobState[];
  readonly deviceUuid?: string;
  /** Keyset paging by id. */
  readonly afterId?: number;
  /** Default 1000, at most 10,000. */
  readonly limit?: number;
  /** `asc` (default) or `desc` by id. */
  readonly order?: 'asc' | 'desc';
}

export interface JobUpdate {
  readonly state?: 'running';
  readonly step?: string;
  /** Replaces the stored data. */
  readonly data?: JobData;
  readonly attempts?: number;
  readonly lease?: { readonly owner: string; readonly until: Date };
}

export interface JobAudit {
  /** job.<verb>, e.g. job.started, job.step. */
  readonly action: string;
  readonly detail?: Readonly<Record<string, string | number | boolean | null>>;
}

/** How a job ends: its terminal state, and for a failure the error code and message (no secrets). */
export type JobFinish =
  | { readonly state: 'succeeded'; readonly data?: JobData; readonly step?: string }
  | {
      readonly state: 'failed';
      readonly code: string;
      readonly message: string;
      readonly data?: JobData;
      readonly step?: string;
    };

export interface JobRepository {
  /** A queued job (audited job.created). Undefined when the device already has an unfinished job. */
  create(job: NewJob, context: ActorContext): Promise<JobRow | undefined>;
  get(id: number): Promise<JobRow | undefined>;
  list(filter?: JobFilter): Promise<JobRow[]>;
  /** Jobs still queued or running, oldest first (what a restart resumes). */
  unfinished(): Promise<JobRow[]>;
  /** The device's queued or running job. */
  activeFor(deviceUuid: string): Promise<JobRow | undefined>;
  /** Progress: step, data, attempts, lease; one audit entry when `audit` is given. SCS_STORE_FAILED if the job is finished. */
  update(id: number, change: JobUpdate, audit: JobAudit | undefined, context: ActorContext): Promise<JobRow>;
  /** update() for a writer that reads nothing back (the runner's progress writes): the same write, checks and audit entry. */
  progress(id: number, change: JobUpdate, audit: JobAudit | undefined, context: ActorContext): Promise<void>;
  /**
   * Terminal state, with the error code and message (no secrets) for a failure; audited job.succeeded / job.failed.
   * `step`, when given, is written first (the last step done, as a progress write would).
   */
  finish(id: number, outcome: JobFinish, context: ActorContext): Promise<JobRow>;
  countByState(): Promise<Record<JobState, number>>;
  /**
   * Leases unfinished jobs nobody holds (no lease, or an expired one) to `owner`, oldest first; rows another node is locking right now are skipped (FOR UPDATE SKIP
   * LOCKED on PostgreSQL). Returns the jobs claimed.
   */
  claim(options: ClaimOptions): Promise<JobRow[]>;
  /** Extends `owner`'s leases on these unfinished jobs; returns the ids `owner` still holds. */
  renewLeases(owner: string, ids: readonly number[], until: Date): Promise<number[]>;
  /** Gives up `owner`'s leases on these jobs (a node stopping), so another node claims them at once. */
  releaseLeases(owner: string, ids: readonly number[]): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Escrow

export interface EscrowRow {
  readonly id: number;
  readonly deviceUuid: string;
  readonly purpose: EscrowPurpose;
  readonly username: string | null;
  readonly jobId: number | null;
  readonly status: EscrowStatus;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface EscrowRepository {
  /** Seals and stores a password before it is sent to the device (audited device.escrow); returns its id. */
  put(
    entry: {
      readonly deviceUuid: string;
      readonly purpose: EscrowPurpose;
      readonly username?: string;
      readonly secret: Secret<string>;
      readonly jobId?: number;
    },
    context: ActorContext,
  ): Promise<number>;
  /** Opens one row for the runner (trying credentials); no audit: nothing leaves the server. */
  open(id: number): Promise<EscrowRow & { readonly secret: Secret<string> }>;
  list(deviceUuid: string, purpose?: EscrowPurpose): Promise<EscrowRow[]>;
  /** Marks rows active / retired. */
  setStatus(ids: readonly number[], status: EscrowStatus): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// The CA and PSK bindings

export interface CaRepository {
  get(): Promise<CaMaterial | undefined>;
  /** Stores the CA unless one exists; returns the one stored (a concurrent first start keeps one). */
  create(
    material: CaMaterial,
    context: ActorContext,
  ): Promise<{ readonly material: CaMaterial; readonly created: boolean }>;
}

export interface RenewalPsk {
  readonly pid: Pid;
  readonly pps: Secret<Pps>;
  readonly batch: string;
}

/**
 * PSKs as provisioning sees them: the renewal PSK a device gets (§6 step 7), and which device a
 * PSK is bound to. A PSK the device holds after provisioning stays `in_use` with its
 * `device_uuid` set ("bound"; docs/provisioning.md, "PSK renewal").
 */
export interface PskBindingRepository {
  /**
   * Takes one `available` PSK (never `exported`: those may already sit on a USB key or in a
   * device), preferring `preferBatch`, then batches bound to `profile`; moves it to in_use for
   * `deviceUuid` and reveals its PPS (audited, purpose renewal). Undefined when none is left.
   */
  takeRenewal(
    request: { readonly deviceUuid: string; readonly preferBatch: string; readonly profile: string | null },
    context: ActorContext,
  ): Promise<RenewalPsk | undefined>;
  /** Sets (or clears) the device a PSK is bound to, whatever its state (audited psk.bind). */
  bind(pid: Pid, deviceUuid: string | null, context: ActorContext): Promise<void>;
  /** in_use PSKs bound to the device. */
  boundTo(deviceUuid: string): Promise<Pid[]>;
}

/** The provisioning repositories a Store carries. */
export interface ProvisioningRepositories {
  readonly profiles: ProfileRepository;
  readonly devices: DeviceRepository;
  readonly jobs: JobRepository;
  readonly escrow: EscrowRepository;
  readonly ca: CaRepository;
  readonly pskBindings: PskBindingRepository;
}
