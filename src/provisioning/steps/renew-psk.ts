import { setTlsPsk } from '../../amt/wsman/ops/setup-and-configuration.ts';
import { ScsError } from '../../errors.ts';
import type { Pid } from '../../psk/pid.ts';
import type { Pps } from '../../psk/pps.ts';
import type { Secret } from '../../secret.ts';
import type { JobContext } from '../context.ts';
import type { Step } from './step.ts';

/**
 * §6 step 7: SetTLSPSK(PID, PPS) with a new PSK from the store, the device's key for a later
 * re-provisioning. The PSK is taken (available -> in_use for this device) and its PID written
 * to the job before it is sent, so a crash never leaves a PSK on a device the store forgot.
 */
export const renewPskStep: Step = {
  name: 'renew-psk',
  async run(ctx) {
    const next = await renewalPsk(ctx);
    if (next === undefined) return;
    await ctx.call(setTlsPsk(next.pid, next.pps));
  },
};

async function renewalPsk(ctx: JobContext): Promise<{ pid: Pid; pps: Secret<Pps> } | undefined> {
  if (ctx.data.newPid !== undefined) {
    const pid = ctx.data.newPid as Pid;
    return { pid, pps: await ctx.write((tx) => tx.psks.reveal(pid, { actor: ctx.actor, purpose: 'renewal' })) };
  }
  if (ctx.data.renewalSkipped === true) return undefined;
  // The batch and its profile binding were read at the hello; jobs from before that read them now.
  let preferBatch = ctx.data.batch;
  let profile = ctx.data.batchProfile;
  if (preferBatch === undefined || profile === undefined) {
    preferBatch = (await ctx.store.psks.get(ctx.pid))?.batch ?? '';
    profile = (await ctx.store.batches.get(preferBatch))?.profile ?? null;
  }
  const request = { deviceUuid: ctx.uuid, preferBatch, profile };
  const taken = await ctx.writeWithData(async (tx) => {
    // A PSK already bound to this device that it does not hold (taken by an attempt that never
    // committed) is its renewal PSK again: nothing leaks, whatever crashed before.
    const spare = (await tx.pskBindings.boundTo(ctx.uuid)).find((p) => p !== ctx.pid);
    const picked =
      spare !== undefined
        ? { pid: spare, pps: await tx.psks.reveal(spare, { actor: ctx.actor, purpose: 'renewal' }) }
        : await tx.pskBindings.takeRenewal(request, { actor: ctx.actor });
    return { value: picked, patch: picked === undefined ? {} : { newPid: picked.pid } };
  });
  if (taken === undefined) {
    // Without TLS the verification needs the new PSK, so renewal cannot be skipped then.
    if (ctx.profile.onNoRenewalPsk === 'fail' || !ctx.profile.tls) {
      throw new ScsError(
        'SCS_NO_RENEWAL_PSK',
        `no available PSK is left to renew device ${ctx.uuid}'s PSK (generate or import more)`,
        { details: { uuid: ctx.uuid, batch: preferBatch } },
      );
    }
    ctx.log.warn('no PSK left for renewal; the profile says provision without one');
    await ctx.persist(
      { renewalSkipped: true },
      { action: 'job.renewal_skipped', detail: { code: 'SCS_NO_RENEWAL_PSK' } },
    );
    return undefined;
  }
  return { pid: taken.pid, pps: taken.pps };
}
