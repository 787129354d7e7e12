import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { AmtClientStats } from '../amt/client.ts';
import { tlsSecureContext } from '../amt/tls-psk.ts';
import type { Ca } from '../crypto/ca.ts';
import type { HelloV2 } from '../hello/decode.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { PskState } from '../store/lifecycle.ts';
import type { JobRow } from '../store/provisioning/types.ts';
import type { Store } from '../store/store.ts';
import type { RunnerConfig } from './context.ts';
import type { DeviceCertificateIssuer } from './device-certificate.ts';
import { GroupCommit } from './group-commit.ts';
import { runJob, type JobOutcome } from './job-run.ts';
import { ProfileCache } from './profile-cache.ts';
import type { StepName } from './plan.ts';

/**
 * The provisioning runner (docs/provisioning.md): takes hellos, turns each usable one into a
 * durable job (PSK `in_use` and job row in one transaction), runs at most `config.maxJobs`
 * jobs at once (the rest wait in order), and picks up unfinished jobs after a restart.
 */

export interface RunnerOptions {
  readonly store: Store;
  readonly ca: Ca;
  /** Signs device certificates; default `ca` itself (src/crypto/ca.ts). main.ts passes the faster node:crypto issuer. */
  readonly issuer?: DeviceCertificateIssuer;
  readonly config: RunnerConfig;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Who the audit log names: default `scs:<hostname>`. */
  readonly actor?: string;
  /** Lease owner written on this node's jobs (docs/operations.md, "Leases"); default host:pid:random. */
  readonly nodeId?: string;
  /** Job leases between nodes on one database (defaults: LEASE_DEFAULTS). */
  readonly lease?: LeaseTiming;
  /** Step retry back-off (default 250 ms doubling to 5 s). */
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
  /** Tries of the post-commit verification (default 8: with the back-off, about half a minute). */
  readonly verifyRetries?: number;
}

export interface LeaseTiming {
  /** A lease lasts this long unless renewed; another node claims the job after it. */
  readonly ttlMs: number;
  /** How often this node renews the leases of its jobs (well under ttlMs). */
  readonly heartbeatMs: number;
  /** How often this node looks for jobs nobody holds (a dead node's) when it has room. */
  readonly pollMs: number;
}

/**
 * 30 s leases renewed every 10 s: two missed beats still leave a margin for a slow database or
 * clock skew between nodes (docs/operations.md); a dead node's jobs move within about 35 s.
 */
export const LEASE_DEFAULTS: LeaseTiming = { ttlMs: 30_000, heartbeatMs: 10_000, pollMs: 5_000 };

export type AcceptOutcome =
  | { readonly kind: 'job'; readonly jobId: number }
  | { readonly kind: 'duplicate' }
  | { readonly kind: 'unknown_pid' }
  | { readonly kind: 'pid_unusable'; readonly state: PskState }
  | { readonly kind: 'stopping' };

export interface JobFinished {
  readonly job: JobRow;
  readonly state: 'succeeded' | 'failed';
  readonly code: string | null;
  /** From the hello (or the job's creation, for a resumed job) to the end. */
  readonly ms: number;
}

export interface RunnerStats {
  readonly running: number;
  readonly queued: number;
  readonly accepted: number;
  readonly duplicates: number;
  readonly succeeded: number;
  readonly failed: number;
  /** AMT client counters over every closed session (bench: the floor does as many). */
  readonly exchanges: number;
  readonly challenges: number;
  readonly connections: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

interface RunnerEvents {
  finished: [JobFinished];
  step: [{ readonly job: JobRow; readonly step: StepName }];
}

interface Tracked {
  job: JobRow;
  /** performance.now() at the hello, or undefined for a resumed job. */
  readonly since: number | undefined;
  controller: AbortController;
  running: Promise<void> | undefined;
}

const UNUSABLE: readonly PskState[] = ['consumed', 'revoked', 'transferred'];

/** `::ffff:10.0.0.5` (an IPv4 peer on a dual-stack socket) is 10.0.0.5. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

class Duplicate extends Error {}

export class Runner extends EventEmitter<RunnerEvents> {
  readonly #store: Store;
  readonly #config: RunnerConfig;
  readonly #log: Logger;
  readonly #metrics: Metrics | undefined;
  readonly #actor: string;
  readonly #deps: Parameters<typeof runJob>[0];
  readonly #group: GroupCommit;
  /** Every device with a job queued or running here, by UUID. */
  readonly #active = new Map<string, Tracked>();
  readonly #queue: Tracked[] = [];
  #running = 0;
  #stopping = false;
  #idle: (() => void)[] = [];
  readonly #nodeId: string;
  readonly #lease: LeaseTiming;
  #timers: NodeJS.Timeout[] = [];
  #beating = false;
  readonly #counts = {
    accepted: 0,
    duplicates: 0,
    succeeded: 0,
    failed: 0,
    exchanges: 0,
    challenges: 0,
    connections: 0,
    bytesSent: 0,
    bytesReceived: 0,
  };

  constructor(options: RunnerOptions) {
    super();
    this.#store = options.store;
    this.#config = options.config;
    this.#log = options.log;
    this.#metrics = options.metrics;
    this.#actor = options.actor ?? `scs:${hostname()}`;
    this.#group = new GroupCommit(options.store);
    this.#nodeId = options.nodeId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.#lease = options.lease ?? LEASE_DEFAULTS;
    this.#deps = {
      store: options.store,
      ca: options.ca,
      issuer: options.issuer ?? options.ca,
      config: options.config,
      log: options.log,
      metrics: options.metrics,
      actor: this.#actor,
      nodeId: this.#nodeId,
      leaseMs: this.#lease.ttlMs,
      backoff: options.backoff ?? { baseMs: 250, maxMs: 5000 },
      verifyRetries: options.verifyRetries ?? 8,
      group: this.#group,
      profiles: new ProfileCache(options.store),
      tlsContext: tlsSecureContext({
        ca: options.ca.certPem,
        minVersion: options.config.tlsMinVersion,
        maxVersion: options.config.tlsMaxVersion,
      }),
      onClientClosed: (s: AmtClientStats) => {
        this.#counts.exchanges += s.exchanges;
        this.#counts.challenges += s.challenges;
        this.#counts.connections += s.connections;
        this.#counts.bytesSent += s.bytesSent;
        this.#counts.bytesReceived += s.bytesReceived;
      },
      onStep: (job, step) => this.emit('step', { job, step }),
    };
  }

  /**
   * One hello (protocol.md §1): a version 3 hello is recorded and refused (no certificate
   * setup here); a device with an unfinished job is a duplicate; an unknown, consumed, revoked
   * or transferred PID is audited and never connected back to. Otherwise, in one transaction,
   * the PSK goes `in_use` and a queued job is created; the job runs when a slot is free.
   */
  async accept(hello: HelloV2, remoteAddress: string): Promise<AcceptOutcome> {
    const address = normalizeAddress(remoteAddress);
    const m = this.#metrics;
    m?.hellosReceived.inc();
    if (this.#stopping) {
      m?.hellosRejected.inc({ reason: 'stopping' });
      return { kind: 'stopping' };
    }
    if (this.#active.has(hello.uuid)) return this.#duplicate(hello.uuid, address);
    const { pid, uuid } = hello;
    let outcome: AcceptOutcome | JobRow;
    try {
      outcome = await this.#group.run(async (tx): Promise<AcceptOutcome | JobRow> => {
        const psk = await tx.psks.get(pid);
        const facts = { uuid, address, retryCount: hello.retryCount };
        if (psk === undefined) {
          await tx.audit.append({ actor: this.#actor, action: 'hello.unknown_pid', pids: [pid], detail: facts });
          return { kind: 'unknown_pid' };
        }
        if (UNUSABLE.includes(psk.state)) {
          await tx.audit.append({
            actor: this.#actor,
            action: 'hello.pid_unusable',
            pids: [pid],
            detail: { ...facts, state: psk.state },
          });
          return { kind: 'pid_unusable', state: psk.state };
        }
        if ((await tx.jobs.activeFor(uuid)) !== undefined) throw new Duplicate();
        let pskWasInUse = false;
        if (psk.state === 'in_use') {
          // The device's own bound PSK (renewed at its last provisioning): re-provisioning.
          if (psk.deviceUuid !== uuid) {
            await tx.audit.append({
              actor: this.#actor,
              action: 'hello.pid_unusable',
              pids: [pid],
              detail: { ...facts, state: psk.state, boundTo: psk.deviceUuid },
            });
            return { kind: 'pid_unusable', state: psk.state };
          }
          pskWasInUse = true;
        } else {
          await tx.psks.transition({
            pids: [pid],
            from: [psk.state],
            to: 'in_use',
            actor: this.#actor,
            reason: 'hello',
            deviceUuid: uuid,
          });
        }
        const batch = await tx.batches.get(psk.batch);
        const profile = batch?.profile ?? this.#config.profile;
        const job = await tx.jobs.create(
          {
            deviceUuid: uuid,
            pid,
            address,
            profile,
            // Leased from the start: no other node claims the job while it waits here for a slot.
            lease: { owner: this.#nodeId, until: new Date(Date.now() + this.#lease.ttlMs) },
            data: {
              pskWasInUse,
              adminCredentialsSet: hello.adminCredentialsSet,
              batch: psk.batch,
              batchProfile: batch?.profile ?? null,
            },
          },
          { actor: this.#actor },
        );
        // Another server on the same database won the race: roll the PSK change back.
        if (job === undefined) throw new Duplicate();
        await tx.devices.noteJob(uuid, { address, profile, jobId: job.id }, { actor: this.#actor });
        return job;
      });
    } catch (error) {
      // The store wraps what a transaction callback throws (SCS_STORE_FAILED, the Duplicate as its
      // cause) when the write ran alone after its group failed, as it does when two nodes race.
      if (error instanceof Duplicate || (error instanceof Error && error.cause instanceof Duplicate)) {
        return this.#duplicate(uuid, address);
      }
      throw error;
    }
    if ('kind' in outcome) {
      m?.hellosRejected.inc({ reason: outcome.kind });
      this.#log.info({ uuid, address, pid, outcome: outcome.kind }, 'hello not connected back to');
      return outcome;
    }
    this.#counts.accepted++;
    this.#enqueue(outcome, performance.now());
    return { kind: 'job', jobId: outcome.id };
  }

  #duplicate(uuid: string, address: string): AcceptOutcome {
    this.#counts.duplicates++;
    this.#metrics?.hellosDuplicate.inc();
    this.#log.debug({ uuid, address }, 'duplicate hello: the device is being configured');
    return { kind: 'duplicate' };
  }

  /**
   * Claims and queues the unfinished jobs nobody holds: at start, what a previous run left (on
   * SQLite, a single node, every unfinished job: the leases in the file are a dead process's);
   * then, every pollMs, jobs whose node died. Starts the lease heartbeat. Returns how many.
   */
  async resume(): Promise<number> {
    const n = await this.#claim(undefined, this.#store.engine === 'sqlite');
    if (this.#timers.length === 0 && !this.#stopping) {
      const heartbeat = setInterval(() => void this.#heartbeat(), this.#lease.heartbeatMs);
      const poll = setInterval(() => {
        const room = this.#config.maxJobs - this.#active.size;
        if (room > 0 && !this.#beating) {
          this.#claim(room, false).catch((err: unknown) => this.#log.warn({ err }, 'cannot claim orphaned jobs'));
        }
      }, this.#lease.pollMs);
      heartbeat.unref();
      poll.unref();
      this.#timers = [heartbeat, poll];
    }
    return n;
  }

  async #claim(limit: number | undefined, ignoreLeases: boolean): Promise<number> {
    const jobs = await this.#store.jobs.claim({
      owner: this.#nodeId,
      until: new Date(Date.now() + this.#lease.ttlMs),
      ignoreLeases,
      ...(limit === undefined ? {} : { limit }),
    });
    let n = 0;
    for (const job of jobs) {
      if (this.#stopping || this.#active.has(job.deviceUuid)) continue;
      this.#metrics?.jobsResumed.inc();
      this.#log.info(
        { job: job.id, uuid: job.deviceUuid, step: job.step, commitSent: job.data.commitSent === true },
        'resuming an unfinished job',
      );
      this.#enqueue(job, undefined);
      n++;
    }
    return n;
  }

  /**
   * Renews the leases of every job queued or running here. A job whose lease another node now
   * holds (this node stalled past the lease) is dropped here at once: running, it is aborted
   * where it is, so two nodes never drive one device.
   */
  async #heartbeat(): Promise<void> {
    if (this.#beating || this.#active.size === 0) return;
    this.#beating = true;
    try {
      const mine = [...this.#active.values()];
      const held = new Set(
        await this.#store.jobs.renewLeases(
          this.#nodeId,
          mine.map((t) => t.job.id),
          new Date(Date.now() + this.#lease.ttlMs),
        ),
      );
      for (const t of mine) {
        if (held.has(t.job.id) || this.#active.get(t.job.deviceUuid) !== t) continue;
        this.#log.warn({ job: t.job.id, uuid: t.job.deviceUuid }, 'job lease lost to another node: job dropped here');
        if (t.running === undefined) {
          this.#queue.splice(this.#queue.indexOf(t), 1);
          this.#active.delete(t.job.deviceUuid);
        } else t.controller.abort(new Error('the job lease was lost'));
      }
      this.#pump();
    } catch (err) {
      this.#log.warn({ err }, 'cannot renew job leases');
    } finally {
      this.#beating = false;
    }
  }

  #enqueue(job: JobRow, since: number | undefined): void {
    const tracked: Tracked = { job, since, controller: new AbortController(), running: undefined };
    this.#active.set(job.deviceUuid, tracked);
    this.#queue.push(tracked);
    this.#metrics?.jobsQueued.set(this.#queue.length);
    this.#pump();
  }

  #pump(): void {
    while (!this.#stopping && this.#running < this.#config.maxJobs && this.#queue.length > 0) {
      const next = this.#queue.shift() as Tracked;
      this.#running++;
      this.#metrics?.jobsRunning.set(this.#running);
      next.running = this.#run(next);
    }
    this.#metrics?.jobsQueued.set(this.#queue.length);
    if (this.#active.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  async #run(tracked: Tracked): Promise<void> {
    let outcome: JobOutcome | undefined;
    try {
      outcome = await runJob(this.#deps, tracked.job, tracked.controller.signal);
    } catch (error) {
      // The store failed under the job (disk full, database closed): it stays unfinished and
      // resumes at the next start.
      this.#log.error({ job: tracked.job.id, uuid: tracked.job.deviceUuid, err: error }, 'job aborted: store failure');
    } finally {
      this.#running--;
      this.#metrics?.jobsRunning.set(this.#running);
      this.#active.delete(tracked.job.deviceUuid);
    }
    if (outcome !== undefined && outcome.state !== 'interrupted') {
      const ms =
        tracked.since === undefined ? Date.now() - tracked.job.createdAt.getTime() : performance.now() - tracked.since;
      if (outcome.state === 'succeeded') {
        this.#counts.succeeded++;
        this.#metrics?.jobDuration.observe(ms / 1000);
      } else this.#counts.failed++;
      this.emit('finished', {
        job: outcome.job,
        state: outcome.state,
        code: outcome.state === 'failed' ? outcome.code : null,
        ms,
      });
    }
    this.#pump();
  }

  /** Resolves when no job is queued or running here. */
  idle(): Promise<void> {
    if (this.#active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Stops taking hellos and starting jobs. Running jobs get `graceMs` to finish; then they are
   * aborted where they are and stay unfinished in the store (resumed at the next start, from
   * their last step or by verification after "commit sent"). Queued jobs stay queued.
   */
  async stop(options: { readonly graceMs?: number } = {}): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
    const leased = [...this.#active.values()].map((t) => t.job.id);
    for (const t of this.#queue.splice(0)) this.#active.delete(t.job.deviceUuid);
    const running = [...this.#active.values()];
    const all = Promise.allSettled(running.map((t) => t.running ?? Promise.resolve()));
    const grace = options.graceMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), grace);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const t of running) t.controller.abort(new Error('the server is stopping'));
      await all;
    }
    // Unfinished jobs are handed back at once, not when their leases expire: another node (or
    // this one, restarted) takes them at its next claim.
    await this.#store.jobs
      .releaseLeases(this.#nodeId, leased)
      .catch((err: unknown) => this.#log.warn({ err }, 'cannot release job leases'));
    this.#pump();
  }

  stats(): RunnerStats {
    return { running: this.#running, queued: this.#queue.length, ...this.#counts };
  }
}

export function createRunner(options: RunnerOptions): Runner {
  return new Runner(options);
}
