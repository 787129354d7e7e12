import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Server counters in a prom-client registry of their own (not the global default, so tests
 * and several servers in one process do not mix). The REST API will serve
 * `registry.metrics()` at /metrics; until then `serve` logs a summary and tests read values.
 */
export interface Metrics {
  readonly registry: Registry;
  readonly hellosReceived: Counter;
  /** By reason (protocol.md §1 decoder reasons). */
  readonly hellosMalformed: Counter<'reason'>;
  /** A hello for a device that already has an unfinished job. */
  readonly hellosDuplicate: Counter;
  /** Not connected back to: unknown_pid, pid_unusable, stopping. */
  readonly hellosRejected: Counter<'reason'>;
  /** Dropped before any lookup by hello admission (src/hello/rate-limit.ts), by address / pid / pending. */
  readonly hellosRateLimited: Counter<'by'>;
  readonly jobsStarted: Counter;
  readonly jobsSucceeded: Counter;
  readonly jobsFailed: Counter<'code'>;
  readonly jobsResumed: Counter;
  readonly jobsRunning: Gauge;
  readonly jobsQueued: Gauge;
  /** Seconds per step, by step name and outcome (ok / error). */
  readonly stepDuration: Histogram<'step' | 'outcome'>;
  /** Seconds from hello to verified Post, successful jobs only. */
  readonly jobDuration: Histogram;
}

export function createMetrics(registry: Registry = new Registry()): Metrics {
  const registers = [registry];
  return {
    registry,
    hellosReceived: new Counter({ name: 'scs_hellos_received_total', help: 'Well-formed hellos received', registers }),
    hellosMalformed: new Counter({
      name: 'scs_hellos_malformed_total',
      help: 'Hellos refused as malformed, by reason',
      labelNames: ['reason'],
      registers,
    }),
    hellosDuplicate: new Counter({
      name: 'scs_hellos_duplicate_total',
      help: 'Hellos from a device already being configured',
      registers,
    }),
    hellosRejected: new Counter({
      name: 'scs_hellos_rejected_total',
      help: 'Hellos not connected back to, by reason',
      labelNames: ['reason'],
      registers,
    }),
    hellosRateLimited: new Counter({
      name: 'scs_hellos_rate_limited_total',
      help: 'Hellos dropped by admission control before any lookup, by limit (address, pid, pending)',
      labelNames: ['by'],
      registers,
    }),
    jobsStarted: new Counter({ name: 'scs_jobs_started_total', help: 'Provisioning jobs started', registers }),
    jobsSucceeded: new Counter({
      name: 'scs_jobs_succeeded_total',
      help: 'Provisioning jobs that ended with the device verified Post',
      registers,
    }),
    jobsFailed: new Counter({
      name: 'scs_jobs_failed_total',
      help: 'Provisioning jobs that failed, by error code',
      labelNames: ['code'],
      registers,
    }),
    jobsResumed: new Counter({
      name: 'scs_jobs_resumed_total',
      help: 'Unfinished jobs picked up again at start',
      registers,
    }),
    jobsRunning: new Gauge({ name: 'scs_jobs_running', help: 'Jobs running now', registers }),
    jobsQueued: new Gauge({ name: 'scs_jobs_queued', help: 'Jobs waiting for a slot (maxJobs)', registers }),
    stepDuration: new Histogram({
      name: 'scs_step_duration_seconds',
      help: 'Duration of one provisioning step, retries included',
      labelNames: ['step', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    jobDuration: new Histogram({
      name: 'scs_job_duration_seconds',
      help: 'Seconds from hello to verified Post',
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    }),
  };
}

/** The current value of a counter or gauge (all label sets summed, or one label set). */
export async function metricValue(
  metric: Counter<string> | Gauge<string>,
  labels?: Readonly<Record<string, string>>,
): Promise<number> {
  const { values } = await metric.get();
  return values
    .filter((v) => labels === undefined || Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}
