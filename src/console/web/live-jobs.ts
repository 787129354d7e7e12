import type { DeviceEvent, Job, JobEvent, JobState } from './resources.ts';

/** The latest known state of one device's provisioning, as the dashboard lists it. */
export interface LiveJob {
  readonly deviceUuid: string;
  readonly jobId: number;
  readonly state: JobState;
  readonly step: string | null;
  readonly attempts: number;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  /** When the console last heard of it (ms). */
  readonly seen: number;
}

export function fromJob(j: Job): LiveJob {
  return {
    deviceUuid: j.deviceUuid,
    jobId: j.id,
    state: j.state,
    step: j.step,
    attempts: j.attempts,
    errorCode: j.errorCode,
    errorMessage: j.errorMessage,
    seen: new Date(j.updatedAt).getTime(),
  };
}

/** Applies a `job` event: a newer job of the same device replaces the older one. */
export function applyJobEvent(jobs: ReadonlyMap<string, LiveJob>, e: JobEvent, now: number): Map<string, LiveJob> {
  const out = new Map(jobs);
  const old = out.get(e.deviceUuid);
  if (old !== undefined && old.jobId > e.jobId) return out;
  out.set(e.deviceUuid, { ...e, seen: now });
  return out;
}

/** Applies a `device` event (the job's end): provisioned shows as succeeded. */
export function applyDeviceEvent(
  jobs: ReadonlyMap<string, LiveJob>,
  e: DeviceEvent,
  now: number,
): Map<string, LiveJob> {
  const out = new Map(jobs);
  const old = out.get(e.deviceUuid);
  out.set(e.deviceUuid, {
    deviceUuid: e.deviceUuid,
    jobId: old?.jobId ?? 0,
    state: e.state === 'provisioned' ? 'succeeded' : 'failed',
    step: e.state === 'provisioned' ? 'verify' : (old?.step ?? null),
    attempts: old?.attempts ?? 0,
    errorCode: e.errorCode,
    errorMessage: e.errorMessage,
    seen: now,
  });
  return out;
}

/** Running first, then the most recently heard of; at most `max`. */
export function ordered(jobs: ReadonlyMap<string, LiveJob>, max: number): LiveJob[] {
  const rank = (s: JobState): number => (s === 'running' ? 0 : s === 'queued' ? 1 : 2);
  return [...jobs.values()].sort((a, b) => rank(a.state) - rank(b.state) || b.seen - a.seen).slice(0, max);
}
