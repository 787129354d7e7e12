import { EventEmitter } from 'node:events';
import { KeyPool, type PooledKeyPem } from './key-pool.ts';
import { FleetMember, type DeviceRecord, type MemberEnv } from './member.ts';
import type { DevicePlan } from './plan.ts';

export interface DeviceHostOptions extends MemberEnv {
  /** Pre-generated RSA keys shared by the devices (empty: each device makes its own). */
  keyPool?: readonly PooledKeyPem[];
  /** Devices binding their ports at once while starting. */
  startConcurrency?: number;
  /**
   * Changes are reported at most this often (0: once per event-loop turn). Worker processes use
   * 100 ms so that 2,000 devices saying hello do not become 2,000 IPC messages.
   */
  flushIntervalMs?: number;
}

interface DeviceHostEvents {
  /** Records of devices that changed, coalesced (at most one batch per event-loop turn). */
  changes: [DeviceRecord[]];
}

/**
 * Runs a set of fleet devices in this process: the whole fleet when it is small, one worker's
 * share when it is not (simulator/fleet/worker.ts wraps this same class).
 */
export class DeviceHost extends EventEmitter<DeviceHostEvents> {
  readonly members: readonly FleetMember[];
  readonly #byIndex = new Map<number, FleetMember>();
  readonly #dirty = new Set<FleetMember>();
  readonly #startConcurrency: number;
  readonly #flushIntervalMs: number;
  #flushQueued = false;
  #stopped = false;

  constructor(plans: readonly DevicePlan[], opts: DeviceHostOptions) {
    super();
    const pool = new KeyPool(opts.keyPool ?? []);
    const onChange = (m: FleetMember): void => this.#markDirty(m);
    this.members = plans.map((p) => new FleetMember(p, opts, onChange, pool.providerFor(p.index)));
    for (const m of this.members) this.#byIndex.set(m.index, m);
    this.#startConcurrency = opts.startConcurrency ?? 256;
    this.#flushIntervalMs = opts.flushIntervalMs ?? 0;
  }

  member(index: number): FleetMember | undefined {
    return this.#byIndex.get(index);
  }

  /**
   * Binds every device's ports, then starts the hellos: a device must be listening before the
   * SCS, having heard its hello, connects back. One device that cannot bind fails the start and
   * stops the others.
   */
  async start(): Promise<DeviceRecord[]> {
    let next = 0;
    const failures: unknown[] = [];
    const lane = async (): Promise<void> => {
      while (next < this.members.length && failures.length === 0) {
        const m = this.members[next++] as FleetMember;
        try {
          await m.listen();
        } catch (e) {
          failures.push(e);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#startConcurrency, this.members.length) }, lane));
    if (failures.length > 0) {
      await this.stop();
      throw failures[0];
    }
    for (const m of this.members) m.beginHellos();
    return this.records();
  }

  records(): DeviceRecord[] {
    return this.members.map((m) => m.record());
  }

  /** Reports what changed since the last batch, then stops every device. */
  async stop(): Promise<void> {
    this.#flush();
    this.#stopped = true;
    await Promise.all(this.members.map((m) => m.stop()));
  }

  #markDirty(m: FleetMember): void {
    if (this.#stopped) return;
    this.#dirty.add(m);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    if (this.#flushIntervalMs > 0) setTimeout(() => this.#flush(), this.#flushIntervalMs);
    else setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    if (this.#stopped || this.#dirty.size === 0) return;
    const batch = [...this.#dirty].map((d) => d.record());
    this.#dirty.clear();
    this.emit('changes', batch);
  }
}
