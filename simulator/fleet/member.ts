import { SimDevice } from '../device/device.ts';
import type { KeyPairProvider } from '../device/keystore.ts';
import { HelloSender } from '../hello/sender.ts';
import type { DevicePlan } from './plan.ts';

/** Settings every device of a fleet (or of one worker) shares. */
export interface MemberEnv {
  scsHost: string;
  scsPort: number;
  /** Multiplies hello delays and the setup window (protocol.md §1d). */
  timeFactor: number;
  /** Nominal setup window (6 h by default), before the time factor. */
  windowMs: number;
  tlsPort: number;
  httpPort: number;
  /** Epoch ms the fleet started; `provisionedAfterMs` counts from here. */
  startedAt: number;
  /**
   * Real milliseconds over which the devices' first hellos are spread (0 or absent: all at
   * once). Device i waits `helloRampDelayMs(i, fleetSize, helloSpreadMs)` after its process
   * listens; the time factor does not scale it (a bench ramp, not part of the §1d schedule).
   */
  helloSpreadMs?: number;
  /** Devices in the whole fleet (not this worker's share): the ramp's denominator. */
  fleetSize?: number;
}

/** Device `index`'s wait before its first hello: an even ramp of `spreadMs` over `devices` devices. */
export function helloRampDelayMs(index: number, devices: number, spreadMs: number): number {
  if (!(spreadMs > 0) || devices <= 1) return 0;
  return Math.floor((index * spreadMs) / devices);
}

/** One device as the fleet reports it: the state file's rows. JSON; never a PPS or password. */
export interface DeviceRecord {
  index: number;
  address: string;
  tlsPort: number | null;
  httpPort: number | null;
  uuid: string;
  /** The PID the device holds now (after commit: the one SetTLSPSK gave it, if any). */
  pid: string | null;
  /** The PID from the PSK file. */
  csvPid: string;
  state: 'Pre' | 'In' | 'Post';
  /** What 16993 serves: TLS-PSK or (after a committed TLS setup) the issued certificate. */
  tls: 'psk' | 'cert';
  /** sending: hellos on schedule; idle: none due (Pre, Post, stopped); window-closed: setup window ran out. */
  hello: 'sending' | 'idle' | 'window-closed';
  /** Hellos attempted, over all windows. */
  hellos: number;
  /** The connect error of the last hello, null when it went through. */
  lastHelloError: string | null;
  /** The device's last error (a failed TLS handshake, an internal error), null when none. */
  lastError: string | null;
  wrongPsk: boolean;
  /** Fault clauses that apply to this device, as written in --faults. */
  faults: string[];
  /** Milliseconds from fleet start to the commit that made it Post, null while not Post. */
  provisionedAfterMs: number | null;
  reboots: number;
}

/**
 * One fleet device: a SimDevice on its own loopback address plus its hello sender, tied
 * together the way firmware ties them: hellos run while the device is In (protocol.md §7), stop
 * at Post or Pre, start a fresh window (RetryCount 0, the PID it now holds) when a partial
 * unprovision returns it to In, and after a reboot in In (a power cycle restarts the setup
 * hellos).
 */
export class FleetMember {
  readonly plan: DevicePlan;
  readonly device: SimDevice;
  readonly sender: HelloSender;
  readonly #env: MemberEnv;
  readonly #onChange: (m: FleetMember) => void;
  #hellos = 0;
  #reboots = 0;
  #provisionedAfterMs: number | null = null;
  #lastError: string | null = null;
  #started = false;
  #ramp: NodeJS.Timeout | undefined;

  constructor(plan: DevicePlan, env: MemberEnv, onChange: (m: FleetMember) => void, keyPairProvider?: KeyPairProvider) {
    this.plan = plan;
    this.#env = env;
    this.#onChange = onChange;
    this.device = new SimDevice(plan.setup, {
      faults: plan.faults,
      provisioningWindowMs: env.windowMs * env.timeFactor,
      ...(keyPairProvider === undefined ? {} : { keyPairProvider }),
    });
    const device = this.device;
    this.sender = new HelloSender({
      scsHost: env.scsHost,
      scsPort: env.scsPort,
      localAddress: plan.address,
      timeFactor: env.timeFactor,
      windowMs: env.windowMs,
      identity: () => {
        const pid = device.currentPid;
        if (device.state !== 'In' || pid === undefined) return undefined;
        return { uuid: device.uuid, pid, adminCredentialsSet: device.adminCredentialsSet };
      },
    });
    this.sender.on('attempt', () => {
      this.#hellos++;
      this.#onChange(this);
    });
    this.sender.on('window-closed', () => this.#onChange(this));
    device.on('stateChanged', ({ to }) => {
      if (to === 'Post') this.#provisionedAfterMs = Date.now() - this.#env.startedAt;
      this.#syncHellos(to === 'In');
      this.#onChange(this);
    });
    device.on('unprovisioned', () => {
      this.#provisionedAfterMs = null;
      this.#onChange(this);
    });
    device.on('rebooted', () => {
      this.#reboots++;
      this.#syncHellos(true);
      this.#onChange(this);
    });
    device.on('handshakeFailed', ({ code }) => {
      this.#lastError = `TLS handshake failed: ${code}`;
      this.#onChange(this);
    });
    device.on('error', (e) => {
      this.#lastError = `internal error: ${e.message}`;
      this.#onChange(this);
    });
  }

  get index(): number {
    return this.plan.index;
  }

  /** Binds 16993/16992 (or the fleet's ports) on the device's address. */
  async listen(): Promise<void> {
    await this.device.start({ host: this.plan.address, tlsPort: this.#env.tlsPort, httpPort: this.#env.httpPort });
  }

  /**
   * Starts hellos if the device is In, after its share of the fleet's hello ramp (if any).
   * Called once every device of the host listens.
   */
  beginHellos(): void {
    const delay = helloRampDelayMs(this.plan.index, this.#env.fleetSize ?? 0, this.#env.helloSpreadMs ?? 0);
    const begin = (): void => {
      this.#ramp = undefined;
      this.#started = true;
      this.#syncHellos(true);
    };
    if (delay === 0) begin();
    else this.#ramp = setTimeout(begin, delay);
  }

  /** (Re)starts the hello window when the device is In and `restart`; stops hellos otherwise. */
  #syncHellos(restart: boolean): void {
    if (!this.#started) return;
    if (this.device.state === 'In') {
      if (restart || !this.sender.running) this.sender.start();
    } else {
      this.sender.stop();
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.#ramp);
    this.#ramp = undefined;
    this.#started = false;
    this.sender.stop();
    await this.device.stop();
  }

  record(): DeviceRecord {
    const d = this.device;
    const ports = d.ports;
    const snap = d.snapshot();
    return {
      index: this.plan.index,
      address: this.plan.address,
      tlsPort: ports?.tlsPort ?? null,
      httpPort: ports?.httpPort ?? null,
      uuid: d.uuid,
      pid: d.currentPid ?? null,
      csvPid: this.plan.csvPid,
      state: d.state,
      tls: snap.tls,
      hello: this.sender.running ? 'sending' : this.sender.windowClosed ? 'window-closed' : 'idle',
      hellos: this.#hellos,
      lastHelloError: this.#hellos === 0 ? null : (this.sender.lastError ?? null),
      lastError: this.#lastError ?? snap.lastError,
      wrongPsk: this.plan.wrongPsk,
      faults: this.plan.applied,
      provisionedAfterMs: this.#provisionedAfterMs,
      reboots: this.#reboots,
    };
  }
}
