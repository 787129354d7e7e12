import type { SecureContext } from 'node:tls';
import { createAmtClient, type AmtClient, type AmtClientStats } from '../amt/client.ts';
import { createPskTransport, createTlsTransport } from '../amt/connect.ts';
import { isAmtError } from '../amt/wsman/fault.ts';
import type { Operation } from '../amt/wsman/operation.ts';
import type { Ca } from '../crypto/ca.ts';
import type { DeviceCertificateIssuer } from './device-certificate.ts';
import { isScsError, ScsError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Pid } from '../psk/pid.ts';
import type { Pps } from '../psk/pps.ts';
import { Secret } from '../secret.ts';
import type { ProfileSecretValues } from '../store/provisioning/profile.ts';
import type { DeviceRow, JobAudit, JobData, JobRow } from '../store/provisioning/types.ts';
import type { Store } from '../store/store.ts';
import {
  RestartJob,
  type ClientFactory,
  type Credentials,
  type DeviceFacts,
  type JobContext,
  type RunnerConfig,
} from './context.ts';
import type { GroupCommit } from './group-commit.ts';
import type { ProfileCache } from './profile-cache.ts';
import { finishFailed, finishSucceeded } from './outcome.ts';
import { plan, type StepName } from './plan.ts';
import { StepProgress, writeStepEntries } from './progress.ts';
import { isRetryable, withRetries } from './retry.ts';
import { STEPS } from './steps/index.ts';
import { servedCertificate, verifyDevice, type VerifyResult } from './steps/verify.ts';

/** What one job needs from the runner. */
export interface JobRunDeps {
  readonly store: Store;
  readonly ca: Ca;
  readonly issuer: DeviceCertificateIssuer;
  readonly config: RunnerConfig;
  readonly log: Logger;
  readonly metrics: Metrics | undefined;
  readonly actor: string;
  readonly nodeId: string;
  /** How long a lease written by a progress write lasts (the runner's heartbeat renews it too). */
  readonly leaseMs: number;
  /** Every write of the job goes through it. */
  readonly group: GroupCommit;
  /** The TLS context trusting the SCS CA, built once (verification over certificate TLS). */
  readonly tlsContext: SecureContext;
  /** Profiles with their opened secrets, cached briefly (many jobs start within a second). */
  readonly profiles: ProfileCache;
  readonly backoff: { readonly baseMs: number; readonly maxMs: number };
  readonly verifyRetries: number;
  /** Adds a closed client's counters to the runner's totals. */
  readonly onClientClosed: (stats: AmtClientStats) => void;
  readonly onStep?: (job: JobRow, step: StepName) => void;
}

export type JobOutcome =
  | { readonly state: 'succeeded'; readonly job: JobRow }
  | { readonly state: 'failed'; readonly job: JobRow; readonly code: string }
  /** The server is stopping: the job stays unfinished in the store and resumes at the next start. */
  | { readonly state: 'interrupted' };

/** Keeps what must survive a restart of the attempt; everything else belongs to one attempt. */
function carried(data: JobData): JobData {
  const out: { -readonly [K in keyof JobData]: JobData[K] } = {};
  if (data.newPid !== undefined) out.newPid = data.newPid;
  if (data.pskWasInUse !== undefined) out.pskWasInUse = data.pskWasInUse;
  if (data.adminCredentialsSet !== undefined) out.adminCredentialsSet = data.adminCredentialsSet;
  if (data.renewalSkipped !== undefined) out.renewalSkipped = data.renewalSkipped;
  if (data.restarts !== undefined) out.restarts = data.restarts;
  if (data.batch !== undefined) out.batch = data.batch;
  if (data.batchProfile !== undefined) out.batchProfile = data.batchProfile;
  return out;
}

/** The fenced progress write of a job another node holds (src/store/provisioning/sql-jobs.ts), however wrapped. */
function leaseLost(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (isScsError(e) && e.details?.leaseLost === true) return true;
  }
  return false;
}

/** A message safe to store and print: ScsError messages carry no secrets by construction. */
function failureOf(error: unknown): { code: string; message: string } {
  if (isScsError(error)) return { code: error.code, message: error.message };
  return {
    code: 'SCS_JOB_FAILED',
    message: `internal error: ${error instanceof Error ? error.name : typeof error}`,
  };
}

/**
 * Runs one job to its end: builds the context, runs plan() step by step with retries and
 * progress, decides what a commit did, and finishes the job in one transaction. Resumes a job
 * left unfinished by a crash (docs/provisioning.md, "Resume").
 */
export async function runJob(deps: JobRunDeps, queued: JobRow, signal: AbortSignal): Promise<JobOutcome> {
  const { actor, metrics } = deps;
  const resumed = queued.attempts > 0;
  const log = deps.log.child({ job: queued.id, uuid: queued.deviceUuid });
  let data: JobData = queued.data.commitSent === true ? queued.data : carried(queued.data);
  // The PPS is read out (audited psk.reveal) in the same write that starts the job: one trip
  // through the group commit instead of two. If that read fails, Context.build tries again
  // inside the job, where a failure fails the job instead of leaving it unstarted.
  const started = await deps.group.run(async (tx) => {
    const row = await tx.jobs.update(
      queued.id,
      {
        state: 'running',
        attempts: queued.attempts + 1,
        data,
        lease: { owner: deps.nodeId, until: new Date(Date.now() + deps.leaseMs) },
      },
      {
        action: 'job.started',
        detail: { attempt: queued.attempts + 1, resumed, commitSent: data.commitSent === true },
      },
      { actor },
    );
    const pps = await tx.psks.reveal(queued.pid, { actor, purpose: 'provision' }).catch(() => undefined);
    // The device row (earlier credentials) in the same transaction, on its connection: read alone
    // it went through kysely's executor and waited for the connection behind open writes. As
    // for the PPS, a failed read is made again by Context.build, where a failure fails the job.
    const device = await tx.devices.get(queued.deviceUuid).then(
      (found) => ({ found }),
      () => undefined,
    );
    return { row, pps, device };
  });
  let job = started.row;
  metrics?.jobsStarted.inc();
  log.info({ address: job.address, pid: job.pid, attempt: job.attempts, resumed }, 'provisioning job started');
  let ctx: Context | undefined;
  try {
    ctx = await Context.build(deps, job, log, signal, started.pps, started.device);
    const verified = await drive(deps, ctx);
    data = ctx.data;
    const finishing = job;
    const finalData = ctx.data;
    const progress = ctx.progress.snapshot();
    const mebxEscrowId = ctx.deviceMebxEscrowId;
    job = await deps.group.run((tx) =>
      finishSucceeded(tx, finishing, finalData, verified, actor, progress, mebxEscrowId),
    );
    metrics?.jobsSucceeded.inc();
    log.info(
      { hostName: ctx.data.hostName, amtVersion: ctx.data.amtVersion, newPid: ctx.data.newPid ?? null },
      'device provisioned and verified',
    );
    return { state: 'succeeded', job };
  } catch (error) {
    if (signal.aborted) {
      log.info({ step: ctx?.currentStep }, 'job interrupted by shutdown; it resumes at the next start');
      return { state: 'interrupted' };
    }
    if (leaseLost(error)) {
      // Another node claimed the job while this one stalled: it is that node's now; write nothing.
      log.warn({ step: ctx?.currentStep }, 'job lease lost to another node: job dropped here');
      return { state: 'interrupted' };
    }
    const failure = failureOf(error);
    data = ctx?.data ?? data;
    log.warn({ code: failure.code, step: ctx?.currentStep, err: error }, 'provisioning job failed');
    const failing = job;
    const failedData = data;
    const progress = ctx?.progress.snapshot() ?? { steps: [], lastStep: undefined };
    job = await deps.group.run((tx) => finishFailed(tx, failing, failedData, failure, actor, progress));
    metrics?.jobsFailed.inc({ code: failure.code });
    return { state: 'failed', job, code: failure.code };
  } finally {
    ctx?.closeSession();
  }
}

/** The steps, restarts included; resolves when the device is verified Post. */
async function drive(deps: JobRunDeps, ctx: Context): Promise<{ credentials: Credentials }> {
  for (;;) {
    try {
      if (ctx.data.commitSent === true) return await afterCommit(deps, ctx);
      for (const name of plan({ profile: ctx.profile })) {
        if (name === 'verify') return await afterCommit(deps, ctx);
        await runStep(deps, ctx, name);
      }
      throw new ScsError('SCS_JOB_FAILED', 'the plan has no verify step');
    } catch (error) {
      if (!(error instanceof RestartJob)) throw error;
      const restarts = (ctx.data.restarts ?? 0) + 1;
      if (restarts > deps.config.stepRetries) {
        await ctx.persist({ commitSent: false });
        throw new ScsError(
          'SCS_VERIFY_FAILED',
          `device ${ctx.uuid} is still In after ${restarts} CommitChanges attempts (${error.reason})`,
          { details: { restarts } },
        );
      }
      ctx.log.info({ reason: error.reason, restarts }, 'starting the job over');
      ctx.restart({ ...carried(ctx.data), restarts });
      await ctx.persist({}, { action: 'job.restarted', detail: { reason: error.reason, restarts } });
    }
  }
}

async function afterCommit(deps: JobRunDeps, ctx: Context): Promise<{ credentials: Credentials }> {
  ctx.currentStep = 'verify';
  const started = performance.now();
  let result: VerifyResult;
  try {
    result = await verifyDevice(ctx, { retries: deps.verifyRetries, ...deps.backoff });
  } catch (error) {
    deps.metrics?.stepDuration.observe({ step: 'verify', outcome: 'error' }, (performance.now() - started) / 1000);
    throw error;
  }
  deps.metrics?.stepDuration.observe({ step: 'verify', outcome: 'ok' }, (performance.now() - started) / 1000);
  if (result.state === 'in') {
    await ctx.persist({ commitSent: false });
    throw new RestartJob('the device is still In after CommitChanges: its pending settings were lost');
  }
  if (ctx.data.tlsContextReused === true && ctx.data.tls === true) ctx.note(await servedCertificate(ctx));
  deps.onStep?.(ctx.job, 'verify');
  return { credentials: result.credentials };
}

async function runStep(deps: JobRunDeps, ctx: Context, name: Exclude<StepName, 'verify'>): Promise<void> {
  const step = STEPS[name];
  ctx.currentStep = name;
  const started = performance.now();
  try {
    await withRetries(() => step.run(ctx), {
      retries: deps.config.stepRetries,
      ...deps.backoff,
      signal: ctx.signal,
      // CommitChanges is resent only when the device said no (ReturnValue 1 or 2); a lost
      // reply is for verify to judge.
      retryable: name === 'commit' ? (e) => isAmtError(e) && isRetryable(e) : isRetryable,
      // A method, not an arrow: tsx (esbuild keepNames) names an arrow made in a property with a
      // defineProperty call each time, here once per step (JobClients below says the same).
      onRetry(e, attempt, waitMs) {
        ctx.log.info(
          { step: name, attempt, waitMs, code: isScsError(e) ? e.code : undefined },
          'step failed; retrying',
        );
        // A failed exchange may leave the socket in any state: the next try reconnects.
        ctx.closeSession();
      },
    });
  } catch (error) {
    deps.metrics?.stepDuration.observe({ step: name, outcome: 'error' }, (performance.now() - started) / 1000);
    // A commit whose reply was lost: the device may be Post. Verify decides.
    if (name === 'commit' && !isAmtError(error) && !ctx.signal.aborted && ctx.data.commitSent === true) {
      ctx.log.info({ code: isScsError(error) ? error.code : undefined }, 'no answer to CommitChanges; verifying');
      ctx.closeSession();
      return;
    }
    throw error;
  }
  const ms = Math.round(performance.now() - started);
  deps.metrics?.stepDuration.observe({ step: name, outcome: 'ok' }, ms / 1000);
  // Written (job.step entry and step column) with the job's next write: progress.ts.
  ctx.progress.done(name, ms);
  deps.onStep?.(ctx.job, name);
}

/**
 * The AMT clients of one job (ClientFactory), each adding its counters to the runner's when it
 * closes. A class, and methods in the tracked client: tsx (esbuild keepNames) names every arrow
 * function made in an object property with a defineProperty call, each time one is made.
 */
class JobClients implements ClientFactory {
  readonly #deps: JobRunDeps;
  readonly #address: string;
  readonly #log: Logger;

  constructor(deps: JobRunDeps, address: string, log: Logger) {
    this.#deps = deps;
    this.#address = address;
    this.#log = log;
  }

  psk(pid: Pid, pps: Secret<Pps>, credentials: Credentials): AmtClient {
    const { config } = this.#deps;
    return tracked(
      createAmtClient({
        transport: createPskTransport({
          host: this.#address,
          port: config.amtTlsPort,
          pid,
          pps,
          minVersion: config.tlsMinVersion,
          maxVersion: config.tlsMaxVersion,
          ciphers: config.tlsCiphers,
          connectTimeoutMs: config.connectTimeoutMs,
        }),
        username: credentials.username,
        password: credentials.password,
        callTimeoutMs: config.callTimeoutMs,
        log: this.#log,
      }),
      this.#deps.onClientClosed,
    );
  }

  tls(servername: string, credentials: Credentials): AmtClient {
    const deps = this.#deps;
    const { config } = deps;
    return tracked(
      createAmtClient({
        transport: createTlsTransport({
          host: this.#address,
          port: config.amtTlsPort,
          ca: deps.ca.certPem,
          secureContext: deps.tlsContext,
          servername,
          minVersion: config.tlsMinVersion,
          maxVersion: config.tlsMaxVersion,
          connectTimeoutMs: config.connectTimeoutMs,
        }),
        username: credentials.username,
        password: credentials.password,
        callTimeoutMs: config.callTimeoutMs,
        log: this.#log,
      }),
      deps.onClientClosed,
    );
  }
}

/** `client`, reporting its counters once when it is closed (a second close does nothing). */
function tracked(client: AmtClient, onClosed: (stats: AmtClientStats) => void): AmtClient {
  let closed = false;
  return {
    call(op, options) {
      return client.call(op, options);
    },
    stats() {
      return client.stats();
    },
    close() {
      if (closed) return;
      closed = true;
      client.close();
      onClosed(client.stats());
    },
  };
}

/** The JobContext of one job: state, device sessions, persistence. */
class Context implements JobContext {
  readonly job: JobRow;
  readonly uuid: string;
  readonly address: string;
  readonly profileName: string;
  readonly profile: JobContext['profile'];
  readonly profileSecrets: ProfileSecretValues;
  readonly pid: Pid;
  readonly pps: Secret<Pps>;
  readonly store: Store;
  readonly ca: Ca;
  readonly issuer: DeviceCertificateIssuer;
  readonly config: RunnerConfig;
  readonly tlsContext: SecureContext;
  readonly log: Logger;
  readonly signal: AbortSignal;
  readonly actor: string;
  readonly candidates: readonly Credentials[];
  /** The device row's MEBx escrow id at the job's start (the finish keeps it when no new one was set). */
  readonly deviceMebxEscrowId: number | null;
  readonly clients: ClientFactory;
  data: JobData;
  facts: DeviceFacts | undefined;
  credentials: Credentials | undefined;
  readonly escrowed = new Map<number, Secret<string>>();
  currentStep: StepName | undefined;
  /** Steps done and not yet written: they go with the next write. */
  readonly progress = new StepProgress();
  readonly #deps: JobRunDeps;
  #client: AmtClient | undefined;

  private constructor(
    deps: JobRunDeps,
    job: JobRow,
    log: Logger,
    signal: AbortSignal,
    parts: {
      profile: JobContext['profile'];
      profileSecrets: ProfileSecretValues;
      pps: Secret<Pps>;
      candidates: Credentials[];
      deviceMebxEscrowId: number | null;
    },
  ) {
    this.#deps = deps;
    this.job = job;
    this.uuid = job.deviceUuid;
    this.address = job.address;
    this.profileName = job.profile;
    this.profile = parts.profile;
    this.profileSecrets = parts.profileSecrets;
    this.pid = job.pid;
    this.pps = parts.pps;
    this.store = deps.store;
    this.ca = deps.ca;
    this.issuer = deps.issuer;
    this.config = deps.config;
    this.tlsContext = deps.tlsContext;
    this.log = log;
    this.signal = signal;
    this.actor = deps.actor;
    this.candidates = parts.candidates;
    this.deviceMebxEscrowId = parts.deviceMebxEscrowId;
    this.data = job.data;
    this.clients = new JobClients(deps, job.address, log);
  }

  static async build(
    deps: JobRunDeps,
    job: JobRow,
    log: Logger,
    signal: AbortSignal,
    revealed: Secret<Pps> | undefined,
    read: { readonly found: DeviceRow | undefined } | undefined,
  ): Promise<Context> {
    const { store, actor } = deps;
    const { row: profile, secrets: profileSecrets } = await deps.profiles.get(job.profile);
    const pps = revealed ?? (await deps.group.run((tx) => tx.psks.reveal(job.pid, { actor, purpose: 'provision' })));
    const device = read === undefined ? await store.devices.get(job.deviceUuid) : read.found;
    const candidates = await credentialCandidates(store, job, device, profileSecrets);
    return new Context(deps, job, log, signal, {
      profile: profile.settings,
      profileSecrets,
      pps,
      candidates,
      deviceMebxEscrowId: device?.mebxEscrowId ?? null,
    });
  }

  session(): AmtClient {
    if (this.#client === undefined) {
      const credentials = this.credentials;
      if (credentials === undefined) throw new ScsError('SCS_JOB_FAILED', 'no device credentials settled yet');
      this.#client = this.clients.psk(this.pid, this.pps, credentials);
    }
    return this.#client;
  }

  call<T>(operation: Operation<T>): Promise<T> {
    return this.session().call(operation, { signal: this.signal });
  }

  closeSession(): void {
    this.#client?.close();
    this.#client = undefined;
  }

  write<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    return this.#deps.group.run(fn);
  }

  async writeWithData<T>(
    fn: (tx: Store) => Promise<{ readonly value: T; readonly patch: Partial<JobData> }>,
  ): Promise<T> {
    let next: JobData = this.data;
    const progress = this.progress.snapshot();
    const value = await this.write(async (tx) => {
      await writeStepEntries(tx, this.job, progress, this.actor);
      const r = await fn(tx);
      next = { ...this.data, ...r.patch };
      const lease = { owner: this.#deps.nodeId, until: new Date(Date.now() + this.#deps.leaseMs) };
      const change = { data: next, lease, ...(progress.lastStep === undefined ? {} : { step: progress.lastStep }) };
      await tx.jobs.progress(this.job.id, change, undefined, { actor: this.actor });
      return r.value;
    });
    this.progress.written(progress);
    this.data = next;
    return value;
  }

  note(patch: Partial<JobData>): void {
    this.data = { ...this.data, ...patch };
  }

  async persist(patch: Partial<JobData>, audit?: JobAudit): Promise<void> {
    this.data = { ...this.data, ...patch };
    const progress = this.progress.snapshot();
    const change = {
      data: this.data,
      ...(progress.lastStep === undefined ? {} : { step: progress.lastStep }),
      lease: { owner: this.#deps.nodeId, until: new Date(Date.now() + this.#deps.leaseMs) },
    };
    await this.write(async (tx) => {
      await writeStepEntries(tx, this.job, progress, this.actor);
      return tx.jobs.progress(this.job.id, change, audit, { actor: this.actor });
    });
    this.progress.written(progress);
  }

  /** A new attempt from step 1 (same job, same PSKs). */
  restart(data: JobData): void {
    this.closeSession();
    this.data = data;
    this.facts = undefined;
    this.credentials = undefined;
  }
}

/**
 * Who the device may accept in setup mode, in order: the admin account a previous
 * provisioning set (a device re-provisioned after PartialUnprovision keeps it, §6), the MEBx
 * password the profile says the devices have, `admin` when the hello says the MEBx password
 * was never changed (§1a AdminCredentialsSet = 0), and a MEBx password the server set earlier.
 */
async function credentialCandidates(
  store: Store,
  job: JobRow,
  device: DeviceRow | undefined,
  secrets: ProfileSecretValues,
): Promise<Credentials[]> {
  const out: Credentials[] = [];
  if (device?.adminEscrowId !== null && device?.adminEscrowId !== undefined) {
    const row = await store.escrow.open(device.adminEscrowId);
    out.push({
      username: device.adminUser ?? row.username ?? 'admin',
      password: row.secret,
      source: `escrow:${row.id}`,
      escrowId: row.id,
    });
  }
  if (secrets.currentMebxPassword !== undefined) {
    out.push({ username: 'admin', password: secrets.currentMebxPassword, source: 'profile:currentMebxPassword' });
  }
  if (job.data.adminCredentialsSet === false) {
    out.push({ username: 'admin', password: new Secret('admin'), source: 'factory' });
  }
  if (device?.mebxEscrowId !== null && device?.mebxEscrowId !== undefined) {
    const row = await store.escrow.open(device.mebxEscrowId);
    out.push({ username: 'admin', password: row.secret, source: `escrow:${row.id}`, escrowId: row.id });
  }
  return out;
}
