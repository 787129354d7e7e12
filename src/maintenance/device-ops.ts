import { createAmtClient, type AmtClient } from '../amt/client.ts';
import { createPskTransport, createTlsTransport } from '../amt/connect.ts';
import { tlsSecureContext } from '../amt/tls-psk.ts';
import type { Operation } from '../amt/wsman/operation.ts';
import { setAdminAclEntryEx } from '../amt/wsman/ops/authorization.ts';
import { getGeneralSettings } from '../amt/wsman/ops/general-settings.ts';
import { commitChanges, partialUnprovision, unprovision } from '../amt/wsman/ops/setup-and-configuration.ts';
import {
  epochSeconds,
  getLowAccuracyTimeSynch,
  setHighAccuracyTimeSynch,
} from '../amt/wsman/ops/time-synchronization.ts';
import {
  addCertificate,
  generateKeyPair,
  generatePkcs10RequestEx,
  getPublicPrivateKeyPair,
} from '../amt/wsman/ops/public-key.ts';
import { createTlsCredentialContext } from '../amt/wsman/ops/tls.ts';
import { ACTION, resourceUri } from '../amt/wsman/envelope.ts';
import { single } from '../amt/wsman/operation.ts';
import type { Config } from '../config.ts';
import type { Ca } from '../crypto/ca.ts';
import { ScsError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { fqdn } from '../provisioning/context.ts';
import { nullSignedCertificateRequest } from '../provisioning/csr.ts';
import type { DeviceCertificateIssuer } from '../provisioning/device-certificate.ts';
import { generateAmtPassword } from '../provisioning/passwords.ts';
import { Secret } from '../secret.ts';
import type { DeviceRow } from '../store/provisioning/types.ts';
import type { Store } from '../store/store.ts';

/**
 * Life after provisioning (docs/pki.md, "After provisioning"), for devices set up by either
 * path: unprovision (full or partial), admin password rotation, TLS certificate renewal and a
 * time re-sync. Each opens a session the way the device is reached now — TLS with the
 * certificate the SCS CA issued (verified against that CA and the device's name), else TLS-PSK
 * with the renewed PSK — as the escrowed admin, and writes one audit entry.
 */

export interface DeviceOpsDeps {
  readonly store: Store;
  readonly ca: Ca;
  readonly issuer: DeviceCertificateIssuer;
  readonly config: Pick<
    Config,
    'amtTlsPort' | 'tlsMinVersion' | 'tlsMaxVersion' | 'tlsCiphers' | 'connectTimeoutMs' | 'callTimeoutMs'
  >;
  readonly log: Logger;
  readonly actor: string;
}

async function provisionedDevice(store: Store, uuid: string): Promise<DeviceRow> {
  const d = await store.devices.get(uuid);
  if (d === undefined) throw new ScsError('SCS_DEVICE_NOT_FOUND', `no device ${uuid}`);
  if (d.state !== 'provisioned' || d.address === null || d.adminEscrowId === null) {
    throw new ScsError(
      'SCS_DEVICE_STATE_INVALID',
      `device ${uuid} is ${d.state}; this needs a provisioned device with escrowed credentials`,
      {
        details: { state: d.state },
      },
    );
  }
  return d;
}

async function open(deps: DeviceOpsDeps, d: DeviceRow, password?: Secret<string>): Promise<AmtClient> {
  const { config } = deps;
  const escrow = await deps.store.escrow.open(d.adminEscrowId as number);
  const username = d.adminUser ?? escrow.username ?? 'admin';
  const secret = password ?? escrow.secret;
  const address = d.address as string;
  if (d.certPem !== null) {
    return createAmtClient({
      transport: createTlsTransport({
        host: address,
        port: config.amtTlsPort,
        ca: deps.ca.certPem,
        secureContext: tlsSecureContext({
          ca: deps.ca.certPem,
          minVersion: config.tlsMinVersion,
          maxVersion: config.tlsMaxVersion,
        }),
        servername: fqdn(d.hostName ?? '', d.domainName ?? ''),
        minVersion: config.tlsMinVersion,
        maxVersion: config.tlsMaxVersion,
        connectTimeoutMs: config.connectTimeoutMs,
      }),
      username,
      password: secret,
      callTimeoutMs: config.callTimeoutMs,
      log: deps.log,
    });
  }
  if (d.pid !== null) {
    const pps = await deps.store.psks.reveal(d.pid, { actor: deps.actor, purpose: `maintenance ${d.uuid}` });
    return createAmtClient({
      transport: createPskTransport({
        host: address,
        port: config.amtTlsPort,
        pid: d.pid,
        pps,
        minVersion: config.tlsMinVersion,
        maxVersion: config.tlsMaxVersion,
        ciphers: config.tlsCiphers,
        connectTimeoutMs: config.connectTimeoutMs,
      }),
      username,
      password: secret,
      callTimeoutMs: config.callTimeoutMs,
      log: deps.log,
    });
  }
  throw new ScsError(
    'SCS_DEVICE_STATE_INVALID',
    `device ${d.uuid} has neither a TLS certificate nor a PSK the server knows`,
  );
}

async function withSession<T>(
  deps: DeviceOpsDeps,
  d: DeviceRow,
  fn: (call: <R>(op: Operation<R>) => Promise<R>) => Promise<T>,
): Promise<T> {
  const client = await open(deps, d);
  try {
    return await fn((op) => client.call(op));
  } finally {
    client.close();
  }
}

/** Rewrites the device row with changed facts (markProvisioned is the store's one writer of them). */
async function updateDevice(
  deps: DeviceOpsDeps,
  d: DeviceRow,
  patch: Partial<Pick<DeviceRow, 'adminEscrowId' | 'certPem' | 'certFingerprint' | 'certNotAfter'>>,
): Promise<void> {
  const n = { ...d, ...patch };
  await deps.store.devices.markProvisioned(
    d.uuid,
    {
      address: n.address as string,
      amtVersion: n.amtVersion,
      hostName: n.hostName ?? '',
      domainName: n.domainName ?? '',
      profile: n.profile ?? '',
      adminUser: n.adminUser ?? 'admin',
      adminEscrowId: n.adminEscrowId,
      mebxEscrowId: n.mebxEscrowId,
      certPem: n.certPem,
      certFingerprint: n.certFingerprint,
      certNotAfter: n.certNotAfter,
      pid: n.pid,
      jobId: n.lastJobId ?? 0,
    },
    { actor: deps.actor },
  );
}

/** GetLowAccuracyTimeSynch + SetHighAccuracyTimeSynch (§6 step 4). Returns the offset the device had, in seconds. */
export async function syncTime(deps: DeviceOpsDeps, uuid: string): Promise<{ readonly offsetSeconds: number }> {
  const d = await provisionedDevice(deps.store, uuid);
  const offsetSeconds = await withSession(deps, d, async (call) => {
    const { ta0 } = await call(getLowAccuracyTimeSynch());
    const tm1 = epochSeconds();
    await call(setHighAccuracyTimeSynch({ ta0, tm1, tm2: epochSeconds() }));
    return ta0 - tm1;
  });
  await deps.store.audit.append({ actor: deps.actor, action: 'device.time_sync', detail: { uuid, offsetSeconds } });
  return { offsetSeconds };
}

/** A new random admin password, escrowed before it is sent, checked by logging in with it; the old escrow row is retired. */
export async function rotatePassword(deps: DeviceOpsDeps, uuid: string): Promise<{ readonly escrowId: number }> {
  const d = await provisionedDevice(deps.store, uuid);
  const username = d.adminUser ?? 'admin';
  const password = new Secret(generateAmtPassword());
  const escrowId = await deps.store.escrow.put(
    { deviceUuid: uuid, purpose: 'admin', username, secret: password },
    { actor: deps.actor },
  );
  try {
    await withSession(deps, d, async (call) => {
      const { digestRealm } = await call(getGeneralSettings());
      await call(setAdminAclEntryEx({ username, realm: digestRealm, password }));
    });
    const check = await open(deps, d, password);
    try {
      await check.call(getGeneralSettings());
    } finally {
      check.close();
    }
  } catch (error) {
    await deps.store.escrow.setStatus([escrowId], 'retired');
    throw error;
  }
  await deps.store.escrow.setStatus([escrowId], 'active');
  if (d.adminEscrowId !== null) await deps.store.escrow.setStatus([d.adminEscrowId], 'retired');
  await updateDevice(deps, d, { adminEscrowId: escrowId });
  await deps.store.audit.append({
    actor: deps.actor,
    action: 'device.rotate_password',
    detail: { uuid, escrow: escrowId },
  });
  return { escrowId };
}

/** Delete of the one AMT_TLSCredentialContext (the simulator resolves the only instance without selectors). */
function deleteTlsCredentialContext(): Operation<number> {
  return single(
    'AMT_TLSCredentialContext.Delete',
    {
      kind: 'call',
      action: ACTION.delete,
      resourceUri: resourceUri('AMT_TLSCredentialContext'),
      body: '',
      idempotent: false,
    },
    () => 0,
  );
}

/**
 * A new device key and certificate (§6 step 6 again), bound in place of the old one, committed,
 * and checked by connecting over TLS with it. `withinDays`: only when the current certificate
 * expires sooner (0: always).
 */
export async function renewCertificate(
  deps: DeviceOpsDeps,
  uuid: string,
  options: { readonly withinDays?: number; readonly validityDays?: number } = {},
): Promise<{ readonly renewed: boolean; readonly notAfter: Date | null }> {
  const d = await provisionedDevice(deps.store, uuid);
  if (d.certPem === null)
    throw new ScsError('SCS_DEVICE_STATE_INVALID', `device ${uuid} has no TLS certificate from this server`);
  const within = options.withinDays ?? 0;
  if (within > 0 && d.certNotAfter !== null && d.certNotAfter.getTime() - Date.now() > within * 86_400_000) {
    return { renewed: false, notAfter: d.certNotAfter };
  }
  const name = fqdn(d.hostName ?? '', d.domainName ?? '');
  const issued = await withSession(deps, d, async (call) => {
    const key = await call(generateKeyPair(0, 2048));
    const { derKey } = await call(getPublicPrivateKeyPair(key.instanceId));
    const { signedCertificateRequest } = await call(
      generatePkcs10RequestEx({
        keyPairInstanceId: key.instanceId,
        nullSignedCertificateRequest: nullSignedCertificateRequest(derKey, name),
        signingAlgorithm: 1,
      }),
    );
    const cert = await deps.issuer.issueDeviceCertificate(Buffer.from(signedCertificateRequest, 'base64'), {
      dnsName: name,
      uuid,
      ...(options.validityDays === undefined ? {} : { validityDays: options.validityDays }),
    });
    const added = await call(addCertificate(cert.der.toString('base64')));
    await call(deleteTlsCredentialContext());
    await call(createTlsCredentialContext(added.instanceId));
    await call(commitChanges());
    return cert;
  });
  const renewedRow = {
    ...d,
    certPem: issued.pem,
    certFingerprint: issued.sha256Fingerprint,
    certNotAfter: issued.notAfter,
  };
  await withSession(deps, renewedRow, (call) => call(getGeneralSettings()));
  await updateDevice(deps, d, {
    certPem: issued.pem,
    certFingerprint: issued.sha256Fingerprint,
    certNotAfter: issued.notAfter,
  });
  await deps.store.audit.append({
    actor: deps.actor,
    action: 'device.renew_certificate',
    detail: { uuid, fingerprint: issued.sha256Fingerprint, notAfter: issued.notAfter.toISOString() },
  });
  return { renewed: true, notAfter: issued.notAfter };
}

/**
 * Unprovision (§6 "Related"). Partial: the device goes back to setup mode with its renewed PSK
 * (kept bound to it: its next hello re-provisions it, the escrowed admin still logs in). Full:
 * factory state (a PKI-capable device: certificate setup mode again); the PSK it held is gone
 * from the device, so it is marked consumed here.
 */
export async function unprovisionDevice(
  deps: DeviceOpsDeps,
  uuid: string,
  options: { readonly partial: boolean },
): Promise<void> {
  const d = await provisionedDevice(deps.store, uuid);
  if (options.partial && d.pid === null) {
    throw new ScsError(
      'SCS_DEVICE_STATE_INVALID',
      `device ${uuid} holds no renewed PSK: a partial unprovision would leave it unreachable; unprovision it fully`,
    );
  }
  await withSession(deps, d, (call) => call(options.partial ? partialUnprovision() : unprovision()));
  if (!options.partial && d.pid !== null) {
    const psk = await deps.store.psks.get(d.pid);
    if (psk?.state === 'in_use') {
      await deps.store.psks.transition({
        pids: [d.pid],
        from: ['in_use'],
        to: 'consumed',
        actor: deps.actor,
        reason: 'unprovisioned',
        deviceUuid: uuid,
      });
    }
  }
  await deps.store.audit.append({
    actor: deps.actor,
    action: 'device.unprovision',
    detail: { uuid, partial: options.partial, pid: d.pid },
  });
}
