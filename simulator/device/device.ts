import { EventEmitter } from 'node:events';
import http from 'node:http';
import net, { type Socket } from 'node:net';
import { ScsError } from '../../src/errors.ts';
import { parsePid } from '../../src/psk/pid.ts';
import { parsePps } from '../../src/psk/pps.ts';
import { uuidToBytes } from '../hello/uuid.ts';
import { NonceStore } from '../http/digest.ts';
import { createWsmanRequestHandler, DEFAULT_MAX_BODY_BYTES, type HostReply } from '../http/server.ts';
import { amtClasses } from '../wsman/classes/index.ts';
import { WsmanDispatcher, type DispatchResult } from '../wsman/dispatcher.ts';
import { WsmanFault } from '../wsman/fault.ts';
import { readRequest, type WsmanRequest } from '../wsman/request.ts';
import { parseXml, XmlRefused } from '../wsman/xml.ts';
import { validateFaults, type DeviceFaults } from './faults.ts';
import { generateRsaKeyPair, type KeyPairProvider } from './keystore.ts';
import { AmtModel, type ModelEvent } from './model.ts';
import { resolveSetup, stateName, type DeviceSetup, type ProvisioningStateName } from './setup.ts';
import { DeviceTls, resolveTlsOptions, type DeviceTlsOptions } from './tls.ts';
import { makeSetupIdentity } from './pki.ts';
import type { HelloIdentity } from '../hello/sender.ts';

export type { DeviceFaults } from './faults.ts';
export type { DeviceSetup } from './setup.ts';
export type { KeyPair, KeyPairProvider } from './keystore.ts';

export interface SimDeviceOptions {
  faults?: DeviceFaults;
  /** RSA key pairs for GenerateKeyPair; default: generated on demand (50-200 ms each). */
  keyPairProvider?: KeyPairProvider;
  /** Milliseconds since the epoch; default Date.now. */
  clock?: () => number;
  /** TLS-PSK versions and suites; default TLS 1.0-1.2 and the five PSK suites of protocol.md §3. */
  tls?: DeviceTlsOptions;
  /** Largest request body; default 256 KiB (larger: 413). */
  maxBodyBytes?: number;
  /** Digest nonce lifetime; default 5 minutes. */
  nonceTtlMs?: number;
  /** Setup window after entering In; default 6 hours (protocol.md §1d). */
  provisioningWindowMs?: number;
}

export interface StartOptions {
  /** Default 127.0.0.1. Each fleet device binds its own 127.x.y.z. */
  host?: string;
  /** Default 16993; 0 picks a free port. */
  tlsPort?: number;
  /** Default 16992; 0 picks a free port. */
  httpPort?: number;
}

export interface BoundPorts {
  tlsPort: number;
  httpPort: number;
}

/** The JSON view of a device: never a PPS, password or key. */
export interface DeviceSnapshot {
  uuid: string;
  pid: string | null;
  state: ProvisioningStateName;
  provisioningState: 0 | 1 | 2;
  provisioningMode: number;
  amtVersion: string;
  hostName: string;
  domainName: string;
  digestRealm: string;
  adminUser: string;
  adminCredentialsSet: boolean;
  /** What 16993 serves now: TLS-PSK, or a certificate (the SCS-issued one, or in PKI setup mode the device's own). */
  tls: 'psk' | 'cert';
  /** In PKI setup mode: 16993 asks for the provisioning certificate chain (mutual TLS). */
  pkiSetup: boolean;
  /** IPS_HostBasedSetupService.CurrentControlMode: 0 none, 1 client control, 2 admin control. */
  controlMode: number;
  /** Why the last provisioning certificate was refused (root-not-trusted, dns-suffix, expired, ...). */
  lastPkiRefusal: string | null;
  address: string | null;
  tlsPort: number | null;
  httpPort: number | null;
  /** ISO time the setup window closes (In only). */
  provisioningWindowEndsAt: string | null;
  /** WS-Man calls answered or dropped so far. */
  calls: number;
  lastError: string | null;
}

export interface SimDeviceEvents {
  /** CommitChanges took the device from In to Post. `pid`: the PSK it now holds (SetTLSPSK's), if any. */
  provisioned: [{ uuid: string; pid: string | null; tls: boolean }];
  /** Full (to Pre) or partial (to In: hellos resume with `pid`). */
  unprovisioned: [{ uuid: string; partial: boolean; state: ProvisioningStateName; pid: string | null }];
  rebooted: [{ uuid: string; reason: 'api' | 'fault' }];
  stateChanged: [{ uuid: string; from: ProvisioningStateName; to: ProvisioningStateName }];
  periodExtended: [{ uuid: string; hours: number; endsAt: number }];
  /** A TLS handshake on 16993 failed (unknown identity, wrong key, timeout...). */
  handshakeFailed: [{ uuid: string; code: string; identity: string | null }];
  /** An internal failure (a bug in the simulator); only emitted when someone listens. */
  error: [Error];
}

/**
 * One simulated Intel AMT device: TLS-PSK / TLS on 16993, HTTP on 16992, HTTP Digest, the
 * WS-Management classes of PSK setup (protocol.md §2-§7), state events and fault hooks.
 */
export class SimDevice extends EventEmitter<SimDeviceEvents> {
  readonly #model: AmtModel;
  readonly #dispatcher: WsmanDispatcher;
  readonly #nonces: NonceStore;
  readonly #tls: DeviceTls;
  readonly #http: http.Server;
  readonly #maxBodyBytes: number;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #faults: DeviceFaults = {};
  #methodStatusLeft = 0;
  #rebootBeforeCommitArmed = false;
  #rebootAfterCommitArmed = false;
  #calls = 0;
  #lastError: string | null = null;
  #tlsServer: net.Server | undefined;
  #httpServer: net.Server | undefined;
  #address: string | null = null;
  #ports: BoundPorts | undefined;

  /** `setup` is validated at run time too (it usually comes from JSON): SCS_SIM_CONFIG_INVALID, SCS_PID_INVALID, SCS_PPS_INVALID. */
  constructor(setup: DeviceSetup, opts: SimDeviceOptions = {}) {
    super();
    const clock = opts.clock ?? Date.now;
    this.#model = new AmtModel(resolveSetup(setup), {
      keyPairProvider: opts.keyPairProvider ?? generateRsaKeyPair,
      clock,
      provisioningWindowMs: opts.provisioningWindowMs ?? 6 * 3_600_000,
      onEvent: (e) => this.#onModelEvent(e),
    });
    this.#tls = new DeviceTls(resolveTlsOptions(opts.tls));
    this.#maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#nonces = new NonceStore(clock, opts.nonceTtlMs);
    this.#dispatcher = new WsmanDispatcher(amtClasses(this.#model), () => {
      const [major, minor] = this.#model.amtVersion.split('.');
      return { productVendor: 'Intel Corporation', productVersion: `AMT ${major}.${minor}`, dashVersion: '1.0.0' };
    });
    this.setFaults(opts.faults ?? {});
    const model = this.#model;
    this.#http = http.createServer(
      { keepAliveTimeout: 60_000 },
      createWsmanRequestHandler({
        realm: () => model.digestRealm,
        lookupHa1: (u) => model.ha1For(u),
        nonces: this.#nonces,
        replyDelayMs: () => this.#faults.latencyMs ?? 0,
        serverHeader: () => `Intel(R) Active Management Technology ${model.amtVersion}`,
        maxBodyBytes: this.#maxBodyBytes,
        handle: (body, user) => this.#handle(body, user),
        onError: (e) => this.#internalError(e),
      }),
    );
  }

  // ---- facts --------------------------------------------------------------------------------

  get uuid(): string {
    return this.#model.uuid;
  }

  /** The 16 UUID bytes in SMBIOS order, as the hello carries them (protocol.md §1c). */
  get uuidBytes(): Buffer {
    return uuidToBytes(this.#model.uuid);
  }

  get state(): ProvisioningStateName {
    return this.#model.stateName;
  }

  /** The PID the device holds (In: the one it hellos with), if any. */
  get currentPid(): string | undefined {
    return this.#model.committed.psk?.pid;
  }

  /**
   * What the device's next hello says, or undefined when it sends none: a PSK hello (version 2)
   * with the PID it holds, or in PKI setup mode a version 3 hello with its trusted root hashes.
   */
  helloIdentity(): HelloIdentity | undefined {
    const m = this.#model;
    if (m.state !== 1) return undefined;
    const base = { uuid: m.uuid, adminCredentialsSet: m.adminCredentialsSet };
    const pid = m.committed.psk?.pid;
    if (pid !== undefined) return { ...base, pid };
    if (!m.inPkiSetup()) return undefined;
    return { ...base, pid: '', hashes: (m.pki?.hashes ?? []).map((h) => ({ algorithm: h.algorithm, hash: h.hash })) };
  }

  /** The hello's AdminCredentialsSet: the MEBx password is not the factory one. */
  get adminCredentialsSet(): boolean {
    return this.#model.adminCredentialsSet;
  }

  get digestRealm(): string {
    return this.#model.digestRealm;
  }

  get ports(): BoundPorts | undefined {
    return this.#ports;
  }

  get address(): string | null {
    return this.#address;
  }

  snapshot(): DeviceSnapshot {
    const m = this.#model;
    return {
      uuid: m.uuid,
      pid: m.committed.psk?.pid ?? null,
      state: m.stateName,
      provisioningState: m.state,
      provisioningMode: m.mode,
      amtVersion: m.amtVersion,
      hostName: m.committed.hostName,
      domainName: m.committed.domainName,
      digestRealm: m.digestRealm,
      adminUser: m.adminUsername,
      adminCredentialsSet: m.adminCredentialsSet,
      tls: m.tlsMode().kind === 'psk' ? 'psk' : 'cert',
      pkiSetup: m.inPkiSetup(),
      controlMode: m.controlMode,
      lastPkiRefusal: m.lastPkiRefusal ?? null,
      address: this.#address,
      tlsPort: this.#ports?.tlsPort ?? null,
      httpPort: this.#ports?.httpPort ?? null,
      provisioningWindowEndsAt: m.windowEndsAt === undefined ? null : new Date(m.windowEndsAt).toISOString(),
      calls: this.#calls,
      lastError: this.#lastError,
    };
  }

  /** The committed state as a DeviceSetup, secrets included: for a state file only its owner reads. */
  exportSetup(): DeviceSetup {
    return this.#model.exportSetup();
  }

  // ---- control ------------------------------------------------------------------------------

  /** Replaces the fault hooks; one-shot hooks (reboot*, methodStatus times) are re-armed. */
  setFaults(faults: DeviceFaults): void {
    this.#faults = { ...validateFaults(faults) };
    this.#methodStatusLeft = faults.methodStatus?.times ?? Number.POSITIVE_INFINITY;
    this.#rebootBeforeCommitArmed = faults.rebootBeforeCommit === true;
    this.#rebootAfterCommitArmed = faults.rebootAfterCommit === true;
  }

  /** A technician enters PID/PPS in MEBx (or a setup.bin is read): Pre -> In, hellos begin. */
  loadPsk(pid: string, pps: string, mebxPassword?: string): void {
    if (this.#model.state !== 0) {
      throw new ScsError('SCS_SIM_CONFIG_INVALID', `device ${this.uuid} is ${this.state}; a PSK is loaded in Pre only`);
    }
    if (mebxPassword !== undefined && !/^[\x20-\x7e]{1,32}$/.test(mebxPassword)) {
      throw new ScsError('SCS_SIM_CONFIG_INVALID', 'mebxPassword must be 1..32 printable ASCII characters');
    }
    this.#model.loadPsk(parsePid(pid), parsePps(pps), mebxPassword);
  }

  async start(opts: StartOptions = {}): Promise<BoundPorts> {
    if (this.#tlsServer !== undefined)
      throw new ScsError('SCS_SIM_CONFIG_INVALID', `device ${this.uuid} is already started`);
    const host = opts.host ?? '127.0.0.1';
    const tlsServer = net.createServer((raw) => this.#onTlsConnection(raw));
    const httpServer = net.createServer((raw) => this.#onHttpConnection(raw));
    this.#tlsServer = tlsServer;
    this.#httpServer = httpServer;
    try {
      const tlsPort = await listen(tlsServer, host, opts.tlsPort ?? 16993);
      const httpPort = await listen(httpServer, host, opts.httpPort ?? 16992);
      this.#address = host;
      this.#ports = { tlsPort, httpPort };
      return this.#ports;
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Closes both ports and every connection. Safe to call twice. */
  async stop(): Promise<void> {
    const servers = [this.#tlsServer, this.#httpServer].filter((s) => s !== undefined);
    this.#tlsServer = undefined;
    this.#httpServer = undefined;
    this.#ports = undefined;
    this.#address = null;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#dropAll();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  /**
   * Power-cycles the firmware: every connection drops, pending (uncommitted) settings, nonces and
   * enumerations are lost, the committed state stays. The ports stay bound.
   */
  reboot(reason: 'api' | 'fault' = 'api'): void {
    this.#dropAll();
    this.#model.discardPending();
    this.#nonces.clear();
    this.#dispatcher.reset();
    this.emit('rebooted', { uuid: this.uuid, reason });
  }

  // ---- internals ----------------------------------------------------------------------------

  #dropAll(): void {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  #track(raw: Socket): void {
    this.#sockets.add(raw);
    raw.once('close', () => this.#sockets.delete(raw));
    // Connection errors (a client reset) are the client's business; never crash the fleet.
    raw.on('error', () => undefined);
  }

  #onTlsConnection(raw: Socket): void {
    this.#track(raw);
    const begin = (): void => {
      if (raw.destroyed) return;
      const mode = this.#model.tlsMode();
      if (mode.kind === 'pki' && mode.identity === undefined) {
        // The setup certificate is made once, on the first connection (RSA key generation is slow).
        raw.pause();
        makeSetupIdentity(this.uuid).then(
          (identity) => {
            this.#model.setupIdentity ??= identity;
            begin();
          },
          (e: unknown) => {
            this.#internalError(e);
            raw.destroy();
          },
        );
        return;
      }
      this.#tls.accept(raw, mode, {
        checkClientChain: (ders) => this.#model.checkClientChain(ders).ok,
        onSecure: (socket) => this.#http.emit('connection', socket),
        onFailure: (code, identity) => {
          this.#lastError = `TLS handshake failed: ${code}`;
          this.emit('handshakeFailed', { uuid: this.uuid, code, identity: identity ?? null });
        },
      });
    };
    const stall = this.#faults.stallHandshakeMs ?? 0;
    if (stall <= 0) {
      begin();
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      begin();
    }, stall);
    this.#timers.add(timer);
  }

  #onHttpConnection(raw: Socket): void {
    this.#track(raw);
    // With TLS on and AcceptNonSecureConnections false, 16992 takes no traffic.
    if (!this.#model.nonSecureAllowed()) {
      raw.destroy();
      return;
    }
    this.#http.emit('connection', raw);
  }

  #onModelEvent(e: ModelEvent): void {
    const uuid = this.uuid;
    const pid = this.#model.committed.psk?.pid ?? null;
    switch (e.type) {
      case 'provisioned':
        this.emit('provisioned', { uuid, pid, tls: e.tls });
        break;
      case 'unprovisioned':
        this.emit('unprovisioned', { uuid, partial: e.partial, state: this.#model.stateName, pid });
        break;
      case 'stateChanged':
        this.emit('stateChanged', { uuid, from: stateName(e.from), to: stateName(e.to) });
        break;
      case 'periodExtended':
        this.emit('periodExtended', { uuid, hours: e.hours, endsAt: e.endsAt });
        break;
    }
  }

  #internalError(e: unknown): void {
    const error = e instanceof Error ? e : new Error(String(e));
    this.#lastError = `internal error: ${error.message}`;
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  #reply(r: DispatchResult): HostReply {
    return { kind: 'reply', status: r.status, xml: r.xml, close: r.closeSession };
  }

  async #handle(body: string, user: string | undefined): Promise<HostReply> {
    let req: WsmanRequest;
    try {
      req = readRequest(parseXml(body, this.#maxBodyBytes));
    } catch (e) {
      // Without credentials a client learns nothing about the body: 401 first.
      if (user === undefined) return { kind: 'unauthorized' };
      if (e instanceof WsmanFault) return this.#reply(this.#dispatcher.faultReply(e, ''));
      if (e instanceof XmlRefused) {
        return this.#reply(this.#dispatcher.faultReply(new WsmanFault('SchemaValidationError', e.message), ''));
      }
      throw e;
    }
    // Identify is the one anonymous operation (DSP0217), as on AMT.
    if (user === undefined && !req.isIdentify) return { kind: 'unauthorized' };

    this.#calls++;
    if (this.#faults.dropAtCall === this.#calls) return { kind: 'drop' };

    const call = this.#dispatcher.methodCall(req);
    const ms = this.#faults.methodStatus;
    if (call !== undefined && ms !== undefined && ms.method === call.method && this.#methodStatusLeft > 0) {
      this.#methodStatusLeft--;
      return this.#reply(this.#dispatcher.returnValueReply(req, call, ms.status));
    }
    const isCommit = call?.cls.className === 'AMT_SetupAndConfigurationService' && call.method === 'CommitChanges';
    if (isCommit && this.#rebootBeforeCommitArmed) {
      this.#rebootBeforeCommitArmed = false;
      this.reboot('fault');
      return { kind: 'drop' };
    }
    let result: DispatchResult;
    try {
      result = await this.#dispatcher.dispatch(req);
    } catch (e) {
      this.#internalError(e);
      return this.#reply(this.#dispatcher.faultReply(new WsmanFault('InternalError'), req.messageId));
    }
    if (isCommit && this.#rebootAfterCommitArmed && result.status === 200) {
      this.#rebootAfterCommitArmed = false;
      this.reboot('fault');
      return { kind: 'drop' };
    }
    return this.#reply(result);
  }
}

function listen(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => {
      reject(
        new ScsError('SCS_LISTEN_FAILED', `simulated device cannot listen on ${host}:${port}: ${e.message}`, {
          cause: e,
          details: { host, port },
        }),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
    });
  });
}
