import { randomBytes, sign } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { SecureContext } from 'node:tls';
import { createAmtClient, type AmtClient } from '../amt/client.ts';
import { createTlsTransport } from '../amt/connect.ts';
import { tlsSecureContext } from '../amt/tls-psk.ts';
import type { Operation } from '../amt/wsman/operation.ts';
import { getGeneralSettings } from '../amt/wsman/ops/general-settings.ts';
import {
  commitChanges,
  getSetupAndConfigurationService,
  ProvisioningState,
} from '../amt/wsman/ops/setup-and-configuration.ts';
import { enumerateSoftwareIdentity } from '../amt/wsman/ops/software-identity.ts';
import type { Ca } from '../crypto/ca.ts';
import { isScsError, ScsError } from '../errors.ts';
import type { HelloV3 } from '../hello/decode.ts';
import type { Logger } from '../log.ts';
import {
  fqdn,
  type Credentials,
  type DeviceFacts,
  type JobContext,
  type RunnerConfig,
} from '../provisioning/context.ts';
import type { DeviceCertificateIssuer } from '../provisioning/device-certificate.ts';
import { generateAmtPassword } from '../provisioning/passwords.ts';
import { ProfileCache } from '../provisioning/profile-cache.ts';
import { hostDomainStep } from '../provisioning/steps/host-domain.ts';
import { timeSyncStep } from '../provisioning/steps/time-sync.ts';
import { tlsStep } from '../provisioning/steps/tls.ts';
import { Secret } from '../secret.ts';
import type { ProfileSecretValues, ProfileSettings } from '../store/provisioning/profile.ts';
import type { JobData } from '../store/provisioning/types.ts';
import type { Store } from '../store/store.ts';
import { createMutualTlsTransport, type MutualTlsOptions } from './mutual-tls.ts';
import { addNextCertInChain, adminSetup, getHostBasedSetupService } from './ops.ts';
import { chooseCertificate, openSigner, type ProvisioningSigner } from './service.ts';

/**
 * Certificate-based remote configuration (docs/pki.md): a version 3 hello -> a stored
 * provisioning certificate whose root the device trusts (or a named refusal) -> mutual TLS to
 * 16993 with that chain -> facts -> AddNextCertInChain for each certificate -> AdminSetup with
 * the signature over ConfigurationNonce || McNonce (admin control mode, Post) -> the profile's
 * time, host/domain and TLS steps (the PSK path's own step code) -> CommitChanges -> verify over
 * the TLS the SCS CA certified (or the pinned setup TLS): Post, admin control mode.
 *
 * A session is not a durable job: AdminSetup is all-or-nothing on the device, so a session cut
 * short leaves a device in setup mode (it keeps sending hellos and gets a new session) or in
 * Post already (the next hello never comes; `pki verify` is left for later, see docs/pki.md).
 */

export interface PkiProvisionerOptions {
  readonly store: Store;
  readonly ca: Ca;
  readonly issuer: DeviceCertificateIssuer;
  readonly config: RunnerConfig;
  readonly log: Logger;
  readonly actor?: string;
}

export type PkiAcceptOutcome =
  | { readonly kind: 'started' }
  | { readonly kind: 'duplicate' }
  | { readonly kind: 'refused'; readonly code: string }
  | { readonly kind: 'stopping' };

export interface PkiStats {
  readonly accepted: number;
  readonly refused: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly duplicates: number;
  readonly running: number;
}

export interface PkiFinished {
  readonly uuid: string;
  readonly address: string;
  readonly state: 'succeeded' | 'failed';
  readonly code: string | null;
  readonly message: string | null;
  readonly certificateId: number;
  /** Hello to verified (or failed). */
  readonly ms: number;
}

interface Events {
  finished: [PkiFinished];
  refused: [{ readonly uuid: string; readonly address: string; readonly code: string; readonly message: string }];
}

/** `::ffff:10.0.0.5` is 10.0.0.5. */
function plainAddress(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export class PkiProvisioner extends EventEmitter<Events> {
  readonly #o: PkiProvisionerOptions;
  readonly #actor: string;
  readonly #profiles: ProfileCache;
  readonly #tlsContext: SecureContext;
  readonly #active = new Map<string, AbortController>();
  readonly #running = new Set<Promise<void>>();
  #stopping = false;
  readonly #counts = { accepted: 0, refused: 0, succeeded: 0, failed: 0, duplicates: 0 };

  constructor(options: PkiProvisionerOptions) {
    super();
    this.#o = options;
    this.#actor = options.actor ?? `scs:${hostname()}`;
    this.#profiles = new ProfileCache(options.store);
    this.#tlsContext = tlsSecureContext({
      ca: options.ca.certPem,
      minVersion: options.config.tlsMinVersion,
      maxVersion: options.config.tlsMaxVersion,
    });
  }

  stats(): PkiStats {
    return { ...this.#counts, running: this.#active.size };
  }

  /** A version 3 hello: refuse with a named reason, or start a setup session (one per device at a time). */
  async accept(hello: HelloV3, remoteAddress: string): Promise<PkiAcceptOutcome> {
    const address = plainAddress(remoteAddress);
    const { uuid } = hello;
    if (this.#stopping) return { kind: 'stopping' };
    if (this.#active.has(uuid) || this.#active.size >= this.#o.config.maxJobs) {
      this.#counts.duplicates++;
      return { kind: 'duplicate' };
    }
    const { store } = this.#o;
    const controller = new AbortController();
    this.#active.set(uuid, controller);
    let chosen;
    let profile: { name: string; settings: ProfileSettings; secrets: ProfileSecretValues };
    try {
      const cached = await this.#profiles.get(this.#o.config.profile);
      profile = { name: cached.row.name, settings: cached.row.settings, secrets: cached.secrets };
      const device = await store.devices.get(uuid);
      const deviceDomain =
        profile.settings.domainName !== '' ? profile.settings.domainName : (device?.domainName ?? undefined);
      chosen = chooseCertificate(await store.pki.list(), hello.hashes, { now: new Date(), deviceDomain });
    } catch (error) {
      this.#active.delete(uuid);
      if (!isScsError(error)) throw error;
      this.#counts.refused++;
      this.#o.log.warn({ uuid, address, code: error.code }, error.message);
      await store.audit.append({
        actor: this.#actor,
        action: 'hello.pki_refused',
        detail: { uuid, address, code: error.code, message: error.message, hashes: hello.hashes.length },
      });
      this.emit('refused', { uuid, address, code: error.code, message: error.message });
      return { kind: 'refused', code: error.code };
    }
    this.#counts.accepted++;
    const started = performance.now();
    const run = this.#session(hello, address, chosen.id, profile, controller.signal)
      .then(
        () => ({ state: 'succeeded' as const, code: null, message: null }),
        (error: unknown) => ({
          state: 'failed' as const,
          code: isScsError(error) ? error.code : 'SCS_JOB_FAILED',
          message: isScsError(error)
            ? error.message
            : `internal error: ${error instanceof Error ? error.name : 'unknown'}`,
        }),
      )
      .then((r) => {
        this.#active.delete(uuid);
        if (r.state === 'succeeded') this.#counts.succeeded++;
        else this.#counts.failed++;
        this.emit('finished', { uuid, address, certificateId: chosen.id, ms: performance.now() - started, ...r });
      });
    this.#running.add(run);
    void run.finally(() => this.#running.delete(run));
    return { kind: 'started' };
  }

  /** Resolves when no session runs. */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    for (const c of this.#active.values()) c.abort(new Error('the server is stopping'));
    await this.idle();
  }

  async #session(
    hello: HelloV3,
    address: string,
    certificateId: number,
    profile: { name: string; settings: ProfileSettings; secrets: ProfileSecretValues },
    signal: AbortSignal,
  ): Promise<void> {
    const { store, config } = this.#o;
    const actor = this.#actor;
    const uuid = hello.uuid;
    const log = this.#o.log.child({ uuid, address, pkiCertificate: certificateId });
    const row = await store.pki.get(certificateId);
    if (row === undefined)
      throw new ScsError('SCS_PKI_NOT_FOUND', `provisioning certificate ${certificateId} was removed`);
    await store.devices.noteJob(uuid, { address, profile: profile.name, jobId: 0 }, { actor });
    await store.audit.append({
      actor,
      action: 'pki.setup_started',
      detail: { uuid, address, certificate: certificateId },
    });
    let escrowId: number | undefined;
    try {
      const signer = await openSigner(store, row, { actor, purpose: `admin-setup ${uuid}` });
      const pin: MutualTlsOptions['pin'] = { sha256: undefined };
      const setupClient = (c: { username: string; password: Secret<string> }): AmtClient =>
        createAmtClient({
          transport: createMutualTlsTransport({
            host: address,
            port: config.amtTlsPort,
            chainPem: signer.chainPem,
            key: signer.key,
            minVersion: config.tlsMinVersion,
            maxVersion: config.tlsMaxVersion,
            connectTimeoutMs: config.connectTimeoutMs,
            pin,
          }),
          username: c.username,
          password: c.password,
          callTimeoutMs: config.callTimeoutMs,
          log,
        });

      // 1. Facts, over mutual TLS with the setup credentials (MEBx password).
      const candidates: Credentials[] = [];
      if (profile.secrets.currentMebxPassword !== undefined) {
        candidates.push({
          username: 'admin',
          password: profile.secrets.currentMebxPassword,
          source: 'profile:currentMebxPassword',
        });
      }
      if (!hello.adminCredentialsSet)
        candidates.push({ username: 'admin', password: new Secret('admin'), source: 'factory' });
      const { client, realm } = await this.#login(setupClient, candidates, uuid, signer);
      let facts: DeviceFacts;
      let nonce: Buffer;
      try {
        const setup = await client.call(getSetupAndConfigurationService(), { signal });
        if (setup.provisioningState !== ProvisioningState.In) {
          throw new ScsError(
            'SCS_DEVICE_STATE_INVALID',
            `device ${uuid} is in ProvisioningState ${setup.provisioningState}, expected 1 (In)`,
            {
              details: { expected: 1, actual: setup.provisioningState },
            },
          );
        }
        const software = await client.call(enumerateSoftwareIdentity(), { signal });
        const settings = await client.call(getGeneralSettings(), { signal });
        facts = {
          digestRealm: realm,
          hostName: settings.hostName,
          domainName: settings.domainName,
          generalSettings: settings.instance,
          provisioningState: setup.provisioningState,
          amtVersion: software.amtVersion,
        };
        ({ configurationNonce: nonce } = await client.call(getHostBasedSetupService(), { signal }));

        // 2. The new admin password is escrowed before it is sent (as on the PSK path).
        const password = new Secret(generateAmtPassword());
        escrowId = await store.escrow.put(
          { deviceUuid: uuid, purpose: 'admin', username: 'admin', secret: password },
          { actor },
        );

        // 3. The chain, leaf first, then AdminSetup signed with the provisioning key.
        for (const [i, der] of signer.chainDer.entries()) {
          await client.call(addNextCertInChain(der, i === 0, i === signer.chainDer.length - 1), { signal });
        }
        const mcNonce = randomBytes(20);
        const signature = sign('sha256', Buffer.concat([nonce, mcNonce]), signer.key);
        await client.call(adminSetup({ realm, password, mcNonce, signature }), { signal });
        log.info({ amtVersion: facts.amtVersion }, 'AdminSetup accepted: admin control mode');
        await store.audit.append({
          actor,
          action: 'pki.admin_setup',
          detail: { uuid, certificate: certificateId, escrow: escrowId },
        });

        // 4. The profile steps, as the new admin, then CommitChanges.
        const credentials: Credentials = { username: 'admin', password, source: `escrow:${escrowId}`, escrowId };
        const post = setupClient(credentials);
        const data: { value: JobData } = { value: {} };
        const stepContext = {
          uuid,
          profile: profile.settings,
          profileName: profile.name,
          issuer: this.#o.issuer,
          log,
          signal,
          facts,
          get data(): JobData {
            return data.value;
          },
          note: (patch: Partial<JobData>) => {
            data.value = { ...data.value, ...patch };
          },
          call: <T>(op: Operation<T>): Promise<T> => post.call(op, { signal }),
        };
        // The three steps use only the members above; they are typed on the PSK job's context.
        const ctx = stepContext as unknown as JobContext;
        try {
          const fresh = await post.call(getGeneralSettings(), { signal });
          stepContext.facts = { ...facts, generalSettings: fresh.instance };
          if (profile.settings.timeSync) await timeSyncStep.run(ctx);
          await hostDomainStep.run(ctx);
          if (profile.settings.tls) await tlsStep.run(ctx);
          await post.call(commitChanges(), { signal });
        } finally {
          post.close();
        }

        // 5. Verify: Post, admin control mode, over the TLS now served.
        const d = data.value;
        const verifier =
          d.tls === true
            ? createAmtClient({
                transport: createTlsTransport({
                  host: address,
                  port: config.amtTlsPort,
                  ca: this.#o.ca.certPem,
                  secureContext: this.#tlsContext,
                  servername: fqdn(d.hostName ?? '', d.domainName ?? ''),
                  minVersion: config.tlsMinVersion,
                  maxVersion: config.tlsMaxVersion,
                  connectTimeoutMs: config.connectTimeoutMs,
                }),
                username: 'admin',
                password,
                callTimeoutMs: config.callTimeoutMs,
                log,
              })
            : setupClient(credentials);
        try {
          const state = await withRetry(() => verifier.call(getSetupAndConfigurationService(), { signal }), signal);
          const hbs = await verifier.call(getHostBasedSetupService(), { signal });
          if (state.provisioningState !== ProvisioningState.Post || hbs.currentControlMode !== 2) {
            throw new ScsError(
              'SCS_VERIFY_FAILED',
              `device ${uuid} is in ProvisioningState ${state.provisioningState}, control mode ${hbs.currentControlMode}; expected 2 (Post), 2 (admin control)`,
            );
          }
        } finally {
          verifier.close();
        }
        await store.escrow.setStatus([escrowId], 'active');
        await store.devices.markProvisioned(
          uuid,
          {
            address,
            amtVersion: facts.amtVersion ?? null,
            hostName: d.hostName ?? facts.hostName,
            domainName: d.domainName ?? facts.domainName,
            profile: profile.name,
            adminUser: 'admin',
            adminEscrowId: escrowId,
            mebxEscrowId: null,
            certPem: d.certPem ?? null,
            certFingerprint: d.certFingerprint ?? null,
            certNotAfter: d.certNotAfter === undefined ? null : new Date(d.certNotAfter),
            pid: null,
            jobId: 0,
          },
          { actor },
        );
        log.info({ hostName: d.hostName, tls: d.tls === true }, 'device provisioned by certificate and verified');
      } finally {
        client.close();
      }
    } catch (error) {
      const code = isScsError(error) ? error.code : 'SCS_JOB_FAILED';
      log.warn({ code, err: error }, 'certificate-based setup failed');
      await store.audit.append({
        actor,
        action: 'pki.setup_failed',
        detail: {
          uuid,
          address,
          certificate: certificateId,
          code,
          message: isScsError(error) ? error.message : 'internal error',
        },
      });
      if (escrowId !== undefined) await store.escrow.setStatus([escrowId], 'retired');
      await store.devices.markState(uuid, 'failed', { jobId: 0, code }, { actor });
      throw error;
    }
  }

  /** The first call settles the credentials; a device that closes right after the handshake refused our chain. */
  async #login(
    make: (c: Credentials) => AmtClient,
    candidates: readonly Credentials[],
    uuid: string,
    signer: ProvisioningSigner,
  ): Promise<{ client: AmtClient; realm: string }> {
    if (candidates.length === 0) {
      throw new ScsError(
        'SCS_PROFILE_INVALID',
        `profile "${this.#o.config.profile}" has no currentMebxPassword and the device says its MEBx password was changed: the server cannot log in`,
        { details: { field: 'currentMebxPassword' } },
      );
    }
    for (const c of candidates) {
      const client = make(c);
      try {
        const s = await client.call(getGeneralSettings());
        return { client, realm: s.digestRealm };
      } catch (error) {
        client.close();
        // The device checks the chain once the handshake is done and then drops the connection:
        // the client sees a reset during the handshake's last flight or on its first request.
        const dropped =
          isScsError(error, 'SCS_AMT_CONNECTION_LOST') ||
          (isScsError(error, 'SCS_TLS_FAILED') && /ECONNRESET|socket hang up|disconnected/i.test(error.message));
        if (dropped) {
          throw new ScsError(
            'SCS_PKI_CERT_REFUSED',
            `device ${uuid} closed the mutual-TLS session at the end of the handshake: it refused provisioning certificate ${signer.row.id} (CN ${signer.row.leafCommonName}). ` +
              `The server found the root among the device's hashes; check that the device's PKI DNS suffix (MEBx, or DHCP option 15) is "${signer.row.dnsSuffix}" or a domain the CN is inside, and that the device clock is within the certificate's validity`,
            { cause: error, details: { certificate: signer.row.id, dnsSuffix: signer.row.dnsSuffix } },
          );
        }
        if (!isScsError(error, 'SCS_AMT_AUTH_FAILED')) throw error;
      }
    }
    throw new ScsError(
      'SCS_AMT_AUTH_FAILED',
      `device ${uuid} refused all ${candidates.length} setup credentials (${candidates.map((c) => c.source).join(', ')})`,
    );
  }
}

/** The device restarts its network stack after CommitChanges: a few tries, half a second apart. */
async function withRetry<T>(fn: () => Promise<T>, signal: AbortSignal, tries = 8): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (error) {
      if (i >= tries || signal.aborted || isScsError(error, 'SCS_AMT_AUTH_FAILED')) throw error;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
