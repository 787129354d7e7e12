import type { AmtClient } from '../../amt/client.ts';
import { connectTls } from '../../amt/tls-psk.ts';
import { getSetupAndConfigurationService, ProvisioningState } from '../../amt/wsman/ops/setup-and-configuration.ts';
import { isScsError, ScsError } from '../../errors.ts';
import type { Pid } from '../../psk/pid.ts';
import type { Pps } from '../../psk/pps.ts';
import type { Secret } from '../../secret.ts';
import type { Credentials, JobContext } from '../context.ts';
import { fqdn } from '../context.ts';
import { isRetryable, withRetries } from '../retry.ts';

/**
 * §6 step 9: after CommitChanges, reconnect the way the device is reached from now on — TLS
 * with the certificate the SCS CA issued (or TLS-PSK with the renewed PSK when the profile has
 * no TLS) — as the new admin, and read ProvisioningState: 2 (Post) is success.
 *
 * The same check decides what a commit with a lost reply (or a crash after "commit sent") did:
 * if the new way in does not work, the old one is tried — TLS-PSK with the hello's PSK and the
 * setup credentials. A device that still answers there in state 1 (In) did not commit (its
 * pending settings are gone with the session) and the job starts over.
 */
export type VerifyResult = { readonly state: 'post'; readonly credentials: Credentials } | { readonly state: 'in' };

/**
 * What verification waits out: a device restarting its network stack refuses or drops
 * connections for a while; so does a device that answers neither way yet.
 */
function verifyRetryable(e: unknown): boolean {
  return isRetryable(e) || isScsError(e, 'SCS_VERIFY_FAILED');
}

/** Failures that say "not this way in" (as opposed to "not now"). */
function refusedWay(error: unknown): boolean {
  return (
    isScsError(error, 'SCS_TLS_CERT_REJECTED') ||
    isScsError(error, 'SCS_TLS_NO_COMMON_SUITE') ||
    isScsError(error, 'SCS_TLS_UNKNOWN_IDENTITY') ||
    isScsError(error, 'SCS_TLS_BAD_KEY') ||
    isScsError(error, 'SCS_AMT_AUTH_FAILED')
  );
}

async function provisioningState(ctx: JobContext, client: AmtClient): Promise<number> {
  try {
    return (await client.call(getSetupAndConfigurationService(), { signal: ctx.signal })).provisioningState;
  } finally {
    client.close();
  }
}

/** The credentials the device should accept after commit, then the other escrowed and setup ones. */
async function afterCommitCandidates(ctx: JobContext): Promise<Credentials[]> {
  const out: Credentials[] = [];
  const adminId = ctx.data.adminEscrowId;
  if (adminId !== undefined) {
    const known = ctx.escrowed.get(adminId);
    const row = known === undefined ? await ctx.store.escrow.open(adminId) : undefined;
    out.push({
      username: row?.username ?? ctx.data.adminUser ?? ctx.profile.adminUser,
      password: known ?? (row as { secret: Secret<string> }).secret,
      source: `escrow:${adminId}`,
      escrowId: adminId,
    });
  }
  for (const c of ctx.candidates)
    if (!out.some((o) => o.escrowId !== undefined && o.escrowId === c.escrowId)) out.push(c);
  return out;
}

export async function verifyDevice(
  ctx: JobContext,
  options: { readonly retries: number; readonly baseMs: number; readonly maxMs: number },
): Promise<VerifyResult> {
  const candidates = await afterCommitCandidates(ctx);
  const useTls = ctx.data.tls === true;
  const newPid = ctx.data.newPid as Pid | undefined;
  const name = fqdn(ctx.data.hostName ?? '', ctx.data.domainName ?? '');
  let newPps: Secret<Pps> | undefined;
  if (!useTls) {
    if (newPid === undefined) {
      throw new ScsError(
        'SCS_VERIFY_FAILED',
        'without TLS and without a renewed PSK there is no way to reach the device after commit',
      );
    }
    newPps = await ctx.write((tx) => tx.psks.reveal(newPid, { actor: ctx.actor, purpose: 'verify' }));
  }

  return withRetries(
    async () => {
      // 1. The new way in, with each candidate (the new admin password first).
      let wayRefused: unknown;
      for (const c of candidates) {
        try {
          const after: AmtClient =
            useTls || newPid === undefined || newPps === undefined
              ? ctx.clients.tls(name, c)
              : ctx.clients.psk(newPid, newPps, c);
          const state = await provisioningState(ctx, after);
          if (state === ProvisioningState.Post) return { state: 'post', credentials: c } as const;
          throw new ScsError('SCS_VERIFY_FAILED', `after commit the device reports ProvisioningState ${state}`, {
            details: { state },
          });
        } catch (error) {
          if (isScsError(error, 'SCS_AMT_AUTH_FAILED')) {
            wayRefused = error;
            continue;
          }
          if (!refusedWay(error)) throw error;
          wayRefused = error;
          break;
        }
      }
      // 2. The old way in: TLS-PSK with the hello's PSK. If it works, the device did not commit.
      for (const c of ctx.credentials === undefined ? ctx.candidates : [ctx.credentials, ...ctx.candidates]) {
        try {
          const state = await provisioningState(ctx, ctx.clients.psk(ctx.pid, ctx.pps, c));
          if (state === ProvisioningState.In) return { state: 'in' } as const;
          if (state === ProvisioningState.Post) return { state: 'post', credentials: c } as const;
          break;
        } catch (error) {
          if (isScsError(error, 'SCS_AMT_AUTH_FAILED')) continue;
          break;
        }
      }
      throw new ScsError(
        'SCS_VERIFY_FAILED',
        `device ${ctx.uuid} could not be confirmed Post after commit: ${wayRefused instanceof Error ? wayRefused.message : 'no answer'}`,
        { cause: wayRefused, details: { uuid: ctx.uuid, tls: useTls } },
      );
    },
    {
      retries: options.retries,
      baseMs: options.baseMs,
      maxMs: options.maxMs,
      signal: ctx.signal,
      retryable: verifyRetryable,
      // A method, not an arrow property: no keepNames defineProperty per device (job-run.ts JobClients).
      onRetry(e, attempt, waitMs) {
        ctx.log.debug({ attempt, waitMs, code: isScsError(e) ? e.code : undefined }, 'verify: trying again');
      },
    },
  );
}

/**
 * The certificate the device serves now, read from a TLS handshake (pinned to the SCS CA): used
 * when the credential context of an earlier attempt was kept, so the device record names the
 * certificate in use, not the one issued last.
 */
export async function servedCertificate(
  ctx: JobContext,
): Promise<{ readonly certPem: string; readonly certFingerprint: string; readonly certNotAfter: string }> {
  const socket = await connectTls({
    host: ctx.address,
    port: ctx.config.amtTlsPort,
    ca: ctx.ca.certPem,
    secureContext: ctx.tlsContext,
    servername: fqdn(ctx.data.hostName ?? '', ctx.data.domainName ?? ''),
    minVersion: ctx.config.tlsMinVersion,
    maxVersion: ctx.config.tlsMaxVersion,
    timeoutMs: ctx.config.connectTimeoutMs,
    signal: ctx.signal,
  });
  try {
    const cert = socket.getPeerX509Certificate();
    if (cert === undefined) throw new ScsError('SCS_VERIFY_FAILED', 'the device served no certificate');
    return {
      certPem: cert.toString(),
      certFingerprint: cert.fingerprint256.replaceAll(':', '').toLowerCase(),
      certNotAfter: new Date(cert.validTo).toISOString(),
    };
  } finally {
    socket.destroy();
  }
}
