import type { Pid } from '../psk/pid.ts';
import type { JobData, JobRow } from '../store/provisioning/types.ts';
import type { Store } from '../store/store.ts';
import type { Credentials } from './context.ts';
import { writeStepEntries, type ProgressSnapshot } from './progress.ts';

/**
 * How a job ends, each in one transaction (docs/provisioning.md, "Finishing"):
 *
 * - verified: the hello PSK `consumed` by the device, the renewal PSK stays `in_use` bound to
 *   it, leftovers bound to it from earlier unverified attempts `consumed`, escrow rows settled,
 *   the device `provisioned`, the job `succeeded`.
 * - failed before commit: the device still holds the hello PSK: it goes back to its prior
 *   state (unless it was already the device's bound PSK), the renewal PSK too, this job's
 *   escrow candidates retired, the device `failed`, the job `failed` with the code.
 * - failed after "commit sent" without a verdict: nothing is released (the device may hold
 *   either PSK); the device is `unverified`, the job `failed` with SCS_VERIFY_FAILED.
 */

export interface Verified {
  readonly credentials: Credentials;
}

/**
 * The steps done since the job's last write (progress.ts): their audit entries first; the last
 * one goes in the job's step column with the finish (returned here for jobs.finish).
 */
async function writeProgress(
  tx: Store,
  job: JobRow,
  progress: ProgressSnapshot,
  actor: string,
): Promise<{ step?: string }> {
  if (progress.steps.length === 0) return {};
  await writeStepEntries(tx, job, progress, actor);
  return progress.lastStep === undefined ? {} : { step: progress.lastStep };
}

export async function finishSucceeded(
  store: Store,
  job: JobRow,
  data: JobData,
  verified: Verified,
  actor: string,
  progress: ProgressSnapshot,
  /** The device's MEBx escrow id as the job read it at its start (only a job's finish changes it). */
  knownMebxEscrowId: number | null,
): Promise<JobRow> {
  const uuid = job.deviceUuid;
  const newPid = (data.newPid as Pid | undefined) ?? null;
  return store.transaction(async (tx) => {
    const step = await writeProgress(tx, job, progress, actor);
    const hello = await tx.psks.get(job.pid);
    if (hello?.state === 'in_use') {
      await tx.psks.transition({
        pids: [job.pid],
        from: ['in_use'],
        to: 'consumed',
        actor,
        reason: 'provisioned',
        deviceUuid: uuid,
      });
    }
    const leftovers = (await tx.pskBindings.boundTo(uuid)).filter((p) => p !== job.pid && p !== newPid);
    if (leftovers.length > 0) {
      // PSKs sent to this device in attempts whose outcome was never known: it does not hold
      // them now, but their PPS left the server, so they are never handed out again.
      await tx.psks.transition({
        pids: leftovers,
        from: ['in_use'],
        to: 'consumed',
        actor,
        reason: 'superseded',
        deviceUuid: uuid,
      });
    }
    const adminEscrowId = verified.credentials.escrowId ?? null;
    const mebxEscrowId = data.mebxEscrowId ?? null;
    const keep = new Set([adminEscrowId, mebxEscrowId].filter((id): id is number => id !== null));
    const rows = await tx.escrow.list(uuid);
    await tx.escrow.setStatus([...keep], 'active');
    await tx.escrow.setStatus(
      rows.filter((r) => !keep.has(r.id) && r.status !== 'retired').map((r) => r.id),
      'retired',
    );
    await tx.devices.markProvisioned(
      uuid,
      {
        address: job.address,
        amtVersion: data.amtVersion ?? null,
        hostName: data.hostName ?? '',
        domainName: data.domainName ?? '',
        profile: job.profile,
        adminUser: verified.credentials.username,
        adminEscrowId,
        // A MEBx password set earlier and not changed now stays the one the device has.
        mebxEscrowId: mebxEscrowId ?? knownMebxEscrowId,
        certPem: data.certPem ?? null,
        certFingerprint: data.certFingerprint ?? null,
        certNotAfter: data.certNotAfter === undefined ? null : new Date(data.certNotAfter),
        pid: newPid,
        jobId: job.id,
      },
      { actor },
    );
    return tx.jobs.finish(job.id, { state: 'succeeded', data, ...step }, { actor });
  });
}

export async function finishFailed(
  store: Store,
  job: JobRow,
  data: JobData,
  failure: { readonly code: string; readonly message: string },
  actor: string,
  progress: ProgressSnapshot,
): Promise<JobRow> {
  const uuid = job.deviceUuid;
  return store.transaction(async (tx) => {
    const step = await writeProgress(tx, job, progress, actor);
    if (data.commitSent === true) {
      const row = await tx.jobs.finish(job.id, { state: 'failed', ...failure, data, ...step }, { actor });
      await tx.devices.markState(uuid, 'unverified', { jobId: job.id, code: failure.code }, { actor });
      return row;
    }
    const release: Pid[] = [];
    if (data.pskWasInUse !== true) release.push(job.pid);
    if (data.newPid !== undefined) release.push(data.newPid as Pid);
    for (const pid of release) {
      const row = await tx.psks.get(pid);
      // An operator may have revoked it meanwhile: only an in_use PSK goes back.
      if (row?.state !== 'in_use') continue;
      await tx.psks.release([pid], { actor, reason: failure.code });
      await tx.pskBindings.bind(pid, null, { actor });
    }
    const candidates = (await tx.escrow.list(uuid)).filter((r) => r.jobId === job.id && r.status === 'candidate');
    await tx.escrow.setStatus(
      candidates.map((r) => r.id),
      'retired',
    );
    const row = await tx.jobs.finish(job.id, { state: 'failed', ...failure, data, ...step }, { actor });
    await tx.devices.markState(uuid, 'failed', { jobId: job.id, code: failure.code }, { actor });
    return row;
  });
}
