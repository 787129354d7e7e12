import type { SecureContext } from 'node:tls';
import type { AmtClient } from '../amt/client.ts';
import type { Operation } from '../amt/wsman/operation.ts';
import type { Instance } from '../amt/wsman/operation.ts';
import type { Config } from '../config.ts';
import type { Ca } from '../crypto/ca.ts';
import type { DeviceCertificateIssuer } from './device-certificate.ts';
import type { Logger } from '../log.ts';
import type { Pid } from '../psk/pid.ts';
import type { Pps } from '../psk/pps.ts';
import type { Secret } from '../secret.ts';
import type { ProfileSecretValues, ProfileSettings } from '../store/provisioning/profile.ts';
import type { JobAudit, JobData, JobRow } from '../store/provisioning/types.ts';
import type { Store } from '../store/store.ts';

/** The settings a job runs with (from src/config.ts). */
export type RunnerConfig = Pick<
  Config,
  | 'amtTlsPort'
  | 'tlsMinVersion'
  | 'tlsMaxVersion'
  | 'tlsCiphers'
  | 'connectTimeoutMs'
  | 'callTimeoutMs'
  | 'maxJobs'
  | 'stepRetries'
  | 'profile'
>;

/** Digest credentials for the device (§4), and where they came from (for logs: never the password). */
export interface Credentials {
  readonly username: string;
  readonly password: Secret<string>;
  /** e.g. profile:currentMebxPassword, factory, escrow:12 */
  readonly source: string;
  /** The escrow row, when the password came from escrow. */
  readonly escrowId?: number;
}

/** What step 1 (§6) read from the device. */
export interface DeviceFacts {
  readonly digestRealm: string;
  readonly hostName: string;
  readonly domainName: string;
  /** The AMT_GeneralSettings instance as read: Put sends it back changed (§6 step 5). */
  readonly generalSettings: Instance;
  readonly provisioningState: number;
  readonly amtVersion: string | undefined;
}

/** One running job: fixed facts, the mutable resume data, and the device session. */
export interface JobContext {
  readonly job: JobRow;
  readonly uuid: string;
  readonly address: string;
  readonly profileName: string;
  readonly profile: ProfileSettings;
  readonly profileSecrets: ProfileSecretValues;
  /** The PSK of the hello: identity and key of the TLS-PSK session (§3). */
  readonly pid: Pid;
  readonly pps: Secret<Pps>;
  readonly store: Store;
  /** The SCS CA: its certificate is what verification trusts. */
  readonly ca: Ca;
  /** Signs device certificates with the CA key (§6 step 6). */
  readonly issuer: DeviceCertificateIssuer;
  readonly config: RunnerConfig;
  /** The TLS context trusting the SCS CA (certificate TLS to the device after commit). */
  readonly tlsContext: SecureContext;
  readonly log: Logger;
  readonly signal: AbortSignal;
  readonly actor: string;
  /** Credentials to try for the setup session, in order. */
  readonly candidates: readonly Credentials[];
  /** Persisted after every step and at the points docs/provisioning.md names (escrow, renewal PSK, commit sent). */
  data: JobData;
  facts: DeviceFacts | undefined;
  /** Passwords escrowed by this job, by escrow id (so they are not read back from the store). */
  readonly escrowed: Map<number, Secret<string>>;
  /** The credentials the device accepted in this attempt. */
  credentials: Credentials | undefined;
  /** Opens (or returns) the TLS-PSK session with the accepted credentials. */
  session(): AmtClient;
  /** Runs one operation on the session, with the job's abort signal. */
  call<T>(operation: Operation<T>): Promise<T>;
  /** Runs `fn` in a store transaction shared with other jobs' writes (group commit); resolves once committed. */
  write<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` and writes the job data patch it returns in the same transaction: a PSK taken or a
   * password escrowed is never committed without the job knowing it (a crash between the two
   * would leak it).
   */
  writeWithData<T>(fn: (tx: Store) => Promise<{ readonly value: T; readonly patch: Partial<JobData> }>): Promise<T>;
  /** Merges `patch` into the job data; the runner writes it with the step's progress. */
  note(patch: Partial<JobData>): void;
  /** Merges `patch` into the job data and writes it now (before something is sent that depends on it). */
  persist(patch: Partial<JobData>, audit?: JobAudit): Promise<void>;
  /** Drops the current session (the next call reconnects). */
  closeSession(): void;
  /** Fresh clients for probing: PSK with the hello PSK or the new one, or certificate TLS. */
  readonly clients: ClientFactory;
}

export interface ClientFactory {
  psk(pid: Pid, pps: Secret<Pps>, credentials: Credentials): AmtClient;
  tls(servername: string, credentials: Credentials): AmtClient;
}

export class RestartJob extends Error {
  override readonly name = 'RestartJob';
  readonly reason: string;
  constructor(reason: string) {
    super(`start the job over: ${reason}`);
    this.reason = reason;
  }
}

export function fqdn(hostName: string, domainName: string): string {
  return domainName === '' ? hostName : `${hostName}.${domainName}`;
}
