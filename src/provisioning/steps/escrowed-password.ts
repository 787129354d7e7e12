import { Secret } from '../../secret.ts';
import type { EscrowPurpose } from '../../store/provisioning/types.ts';
import type { JobContext } from '../context.ts';
import { generateAmtPassword } from '../passwords.ts';

/**
 * The password this attempt sends for `purpose`, escrowed (sealed in the store) before it is
 * sent: a retry of the step reuses the row, so the device never gets a password the store
 * does not hold (protocol.md §6 step 2).
 */
export async function escrowedPassword(
  ctx: JobContext,
  purpose: EscrowPurpose,
  fixed: Secret<string> | undefined,
  username?: string,
): Promise<{ readonly password: Secret<string>; readonly escrowId: number }> {
  const key = purpose === 'admin' ? 'adminEscrowId' : 'mebxEscrowId';
  const existing = ctx.data[key];
  if (existing !== undefined) {
    const password = ctx.escrowed.get(existing) ?? (await ctx.store.escrow.open(existing)).secret;
    return { password, escrowId: existing };
  }
  const password = fixed ?? new Secret(generateAmtPassword());
  const escrowId = await ctx.writeWithData(async (tx) => {
    const id = await tx.escrow.put(
      {
        deviceUuid: ctx.uuid,
        purpose,
        secret: password,
        jobId: ctx.job.id,
        ...(username === undefined ? {} : { username }),
      },
      { actor: ctx.actor },
    );
    return { value: id, patch: { [key]: id } };
  });
  ctx.escrowed.set(escrowId, password);
  return { password, escrowId };
}
