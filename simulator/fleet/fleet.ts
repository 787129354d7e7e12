import { EventEmitter } from 'node:events';
import net from 'node:net';
import { ScsError } from '../../src/errors.ts';
import type { PskPair } from '../../src/psk/formats/pair.ts';
import type { SimDevice } from '../device/device.ts';
import { checkTimeFactor, DEFAULT_PSK_WINDOW_MS } from '../hello/schedule.ts';
import { parseFaultSpec } from './faults.ts';
import { DEFAULT_ADDRESS_BASE } from './identity.ts';
import { DEFAULT_KEY_POOL_SIZE, generateKeyPool } from './key-pool.ts';
import type { DeviceRecord, MemberEnv } from './member.ts';
import { DEFAULT_FLEET_MEBX_PASSWORD, planFleet, type DevicePlan } from './plan.ts';
import { readPskFile } from './psk-file.ts';
import { InlineShard, ProcessShard, type Shard } from './shard.ts';
import { StateFileWriter } from './state-file.ts';

export const DEFAULT_SCS_PORT = 9971;
/** 2 listening sockets per device plus its live connections stay far below a 20,000-file limit. */
export const DEFAULT_MAX_DEVICES_PER_WORKER = 2000;
export const DEFAULT_SEED = 'amt-scs';

export interface FleetOptions {
  devices: number;
  /** `HOST[:PORT]` of the SCS hello listener; default 127.0.0.1:9971. */
  scs?: string;
  /** The PID/PPS pairs, device i gets pair i; or `pskFile` (a PID,PPS CSV). */
  psks?: readonly PskPair[];
  pskFile?: string;
  /** Makes UUIDs, realms and fault choices repeatable; default "amt-scs". */
  seed?: string;
  /** Delay before every HTTP reply of every device. */
  latencyMs?: number;
  /**
   * Spread the first hellos evenly over this many real milliseconds (device i waits
   * i × spread / devices after its process listens); default 0: all at once.
   */
  helloSpreadMs?: number;
  /** The --faults language (simulator/fleet/faults.ts). */
  faults?: string;
  /** MEBx password of every device (the admin Digest password in setup mode); default P@ssw0rd. */
  mebxPassword?: string;
  /** Default 6.2.0 (the device's default). */
  amtVersion?: string;
  domainName?: string;
  /** Multiplies hello delays and the setup window; default 1 (real time). */
  timeFactor?: number;
  /** Nominal setup window; default 6 h. */
  windowMs?: number;
  /** Default 16993 / 16992 on every device address; 0 lets each device pick a free port. */
  tlsPort?: number;
  httpPort?: number;
  /** First device address; default 127.10.0.1. */
  addressBase?: string;
  /** A JSON file kept up to date with every device's state. */
  stateFile?: string;
  stateFileDebounceMs?: number;
  /** Above this many devices the fleet runs in worker processes of at most this many each. */
  maxDevicesPerWorker?: number;
  /** auto: in this process when the fleet fits one worker, else worker processes. */
  workers?: 'auto' | 'inline' | 'processes';
  /** RSA-2048 key pairs made up front and shared by the devices; 0: each device makes its own. */
  keyPoolSize?: number;
}

export interface FleetCounts {
  devices: number;
  pre: number;
  in: number;
  post: number;
  /** In and sending hellos. */
  sending: number;
  /** In, and the setup window ran out. */
  windowClosed: number;
  /** Devices whose last error is set (a failed TLS handshake, an internal error). */
  withError: number;
  /** Hellos attempted by all devices. */
  hellos: number;
}

export interface FleetSummary {
  allProvisioned: boolean;
  devices: number;
  provisioned: number;
  counts: FleetCounts;
  elapsedMs: number;
  workers: number;
  seed: string;
  faults: string;
  /** Time from fleet start to commit, over the provisioned devices. */
  provisionMs: { min: number; median: number; p95: number; max: number } | null;
  /** Up to 100 devices that are not Post, for a first look. */
  notProvisioned: Pick<
    DeviceRecord,
    'index' | 'address' | 'uuid' | 'pid' | 'state' | 'hello' | 'hellos' | 'lastError' | 'lastHelloError' | 'faults'
  >[];
  stateFile: string | null;
}

export type FleetPredicate = 'all-provisioned' | ((fleet: Fleet) => boolean);

interface FleetEvents {
  /** Device records that changed (already applied to `fleet.devices`). */
  change: [DeviceRecord[]];
  /** A worker process failed; its devices stop changing. */
  'worker-failed': [ScsError];
}

/** `HOST`, `HOST:PORT` or `[IPv6]:PORT`. */
export function parseHostPort(text: string, defaultPort: number): { host: string; port: number } {
  const t = text.trim();
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(t) ?? /^([^:]+)(?::(\d+))?$/.exec(t);
  const port = m?.[2] === undefined ? defaultPort : Number(m[2]);
  if (m === null || (m[1] ?? '') === '' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ScsError('SCS_SIM_CONFIG_INVALID', `--scs "${text}" is not HOST or HOST:PORT (port 1..65535)`);
  }
  return { host: m[1] as string, port };
}

function checkInt(name: string, v: number | undefined, min: number, max: number): void {
  if (v !== undefined && (!Number.isInteger(v) || v < min || v > max)) {
    throw new ScsError('SCS_SIM_CONFIG_INVALID', `${name} must be a whole number ${min}..${max}, got ${v}`);
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

/**
 * A running fleet. `devices[i]` is device i's latest record, updated as workers report; the
 * state file (if any) follows it. Built by startFleet().
 */
export class Fleet extends EventEmitter<FleetEvents> {
  readonly devices: DeviceRecord[];
  readonly seed: string;
  readonly faults: string;
  readonly #shards: readonly Shard[];
  readonly #shardOf: readonly Shard[];
  readonly #startedAt: number;
  readonly #stateFile: StateFileWriter | undefined;
  readonly #failures: ScsError[] = [];
  #running = true;
  #stopping: Promise<void> | undefined;

  /** @internal startFleet builds it once every shard has started. */
  constructor(
    records: DeviceRecord[],
    shards: readonly Shard[],
    shardOf: readonly Shard[],
    meta: {
      seed: string;
      faults: string;
      startedAt: number;
      stateFile?: string;
      stateFileDebounceMs?: number;
      scs: string;
    },
  ) {
    super();
    this.devices = records;
    this.#shards = shards;
    this.#shardOf = shardOf;
    this.seed = meta.seed;
    this.faults = meta.faults;
    this.#startedAt = meta.startedAt;
    if (meta.stateFile !== undefined) {
      this.#stateFile = new StateFileWriter(
        meta.stateFile,
        () => ({
          version: 1,
          updatedAt: new Date().toISOString(),
          running: this.#running,
          scs: meta.scs,
          seed: this.seed,
          faults: this.faults,
          counts: this.counts(),
          devices: this.devices,
        }),
        meta.stateFileDebounceMs === undefined ? {} : { debounceMs: meta.stateFileDebounceMs },
      );
    }
    for (const shard of shards) {
      shard.on('changes', (batch) => this.#apply(batch));
      shard.on('failed', (e) => {
        this.#failures.push(e);
        this.emit('worker-failed', e);
      });
    }
  }

  /** Worker processes in use (0: every device runs in this process). */
  get workers(): number {
    return this.#shards.filter((s) => s instanceof ProcessShard).length;
  }

  /** Process ids of the worker processes (empty when the devices run in this process). */
  get workerPids(): number[] {
    return this.#shards.flatMap((s) => (s instanceof ProcessShard && s.pid !== undefined ? [s.pid] : []));
  }

  get stateFile(): string | undefined {
    return this.#stateFile?.file;
  }

  /** Resolves when the state file on disk reflects every change so far. */
  async flushStateFile(): Promise<void> {
    await this.#stateFile?.flush();
  }

  /** Failures of worker processes since the start. */
  get failures(): readonly ScsError[] {
    return this.#failures;
  }

  #apply(batch: readonly DeviceRecord[]): void {
    for (const r of batch) this.devices[r.index] = r;
    this.#stateFile?.changed();
    this.emit('change', [...batch]);
  }

  counts(): FleetCounts {
    const c: FleetCounts = {
      devices: this.devices.length,
      pre: 0,
      in: 0,
      post: 0,
      sending: 0,
      windowClosed: 0,
      withError: 0,
      hellos: 0,
    };
    for (const d of this.devices) {
      if (d.state === 'Pre') c.pre++;
      else if (d.state === 'In') c.in++;
      else c.post++;
      if (d.hello === 'sending') c.sending++;
      if (d.state === 'In' && d.hello === 'window-closed') c.windowClosed++;
      if (d.lastError !== null) c.withError++;
      c.hellos += d.hellos;
    }
    return c;
  }

  /** The device object, when the fleet runs in this process (workers: 'inline' or a small 'auto' fleet). */
  device(index: number): SimDevice | undefined {
    return this.#shardOf[index]?.local(index);
  }

  /** Power-cycles device `index` (pending settings lost; hellos restart if it is In). */
  reboot(index: number): void {
    this.#shardOf[index]?.reboot(index);
  }

  /**
   * Resolves when the predicate holds ('all-provisioned': every device Post). Rejects with
   * SCS_SIM_DEADLINE after `timeoutMs`, SCS_SIM_WORKER_FAILED when a worker dies, or the
   * signal's reason when aborted.
   */
  waitFor(target: FleetPredicate, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    const holds =
      target === 'all-provisioned' ? () => this.devices.every((d) => d.state === 'Post') : () => target(this);
    if (holds()) return Promise.resolve();
    const failed = this.#failures[0];
    if (failed !== undefined) return Promise.reject(failed);
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = (): void => {
        this.off('change', onChange);
        this.off('worker-failed', onFailed);
        opts.signal?.removeEventListener('abort', onAbort);
        if (timer !== undefined) clearTimeout(timer);
      };
      const onChange = (): void => {
        if (!holds()) return;
        cleanup();
        resolve();
      };
      const onFailed = (e: ScsError): void => {
        cleanup();
        reject(e);
      };
      const onAbort = (): void => {
        cleanup();
        const reason: unknown = opts.signal?.reason;
        reject(reason instanceof Error ? reason : new Error('aborted', { cause: reason }));
      };
      this.on('change', onChange);
      this.on('worker-failed', onFailed);
      if (opts.signal?.aborted === true) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          cleanup();
          const c = this.counts();
          reject(
            new ScsError(
              'SCS_SIM_DEADLINE',
              `after ${opts.timeoutMs} ms: ${c.post} of ${c.devices} devices provisioned, ${c.in} In, ${c.pre} Pre`,
              { details: { post: c.post, in: c.in, pre: c.pre, devices: c.devices } },
            ),
          );
        }, opts.timeoutMs);
      }
    });
  }

  summary(): FleetSummary {
    const counts = this.counts();
    const times = this.devices
      .map((d) => d.provisionedAfterMs)
      .filter((t): t is number => t !== null)
      .sort((a, b) => a - b);
    return {
      allProvisioned: counts.post === counts.devices,
      devices: counts.devices,
      provisioned: counts.post,
      counts,
      elapsedMs: Date.now() - this.#startedAt,
      workers: this.workers,
      seed: this.seed,
      faults: this.faults,
      provisionMs:
        times.length === 0
          ? null
          : {
              min: times[0] as number,
              median: percentile(times, 50),
              p95: percentile(times, 95),
              max: times.at(-1) as number,
            },
      notProvisioned: this.devices
        .filter((d) => d.state !== 'Post')
        .slice(0, 100)
        .map(({ index, address, uuid, pid, state, hello, hellos, lastError, lastHelloError, faults }) => ({
          index,
          address,
          uuid,
          pid,
          state,
          hello,
          hellos,
          lastError,
          lastHelloError,
          faults,
        })),
      stateFile: this.#stateFile?.file ?? null,
    };
  }

  /** Stops every device and worker, then writes the state file a last time. Safe to call twice. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await Promise.all(this.#shards.map((s) => s.stop()));
      this.#running = false;
      // Nothing sends hellos any more; the rows keep every other field as last reported.
      for (const d of this.devices) if (d.hello === 'sending') d.hello = 'idle';
      this.#stateFile?.cancel();
      await this.#stateFile?.flush();
    })();
    return this.#stopping;
  }
}

/** Splits [0, n) into `parts` contiguous slices of near-equal size. */
function slices<T>(items: readonly T[], parts: number): T[][] {
  const out: T[][] = [];
  const size = Math.ceil(items.length / parts);
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Starts N simulated devices, each on its own loopback address, each sending hellos to the SCS
 * once every device listens. The CLI `sim` command is a thin wrapper around this.
 */
export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  checkInt('devices', opts.devices, 1, 1_000_000);
  checkInt('tlsPort', opts.tlsPort, 0, 65535);
  checkInt('httpPort', opts.httpPort, 0, 65535);
  checkInt('latencyMs', opts.latencyMs, 0, 600_000);
  checkInt('helloSpreadMs', opts.helloSpreadMs, 0, 86_400_000);
  checkInt('maxDevicesPerWorker', opts.maxDevicesPerWorker, 1, 100_000);
  checkInt('keyPoolSize', opts.keyPoolSize, 0, 4096);
  const timeFactor = checkTimeFactor(opts.timeFactor ?? 1);
  const windowMs = opts.windowMs ?? DEFAULT_PSK_WINDOW_MS;
  if (!(windowMs > 0)) throw new ScsError('SCS_SIM_CONFIG_INVALID', 'windowMs must be above 0');
  const tlsPort = opts.tlsPort ?? 16993;
  const httpPort = opts.httpPort ?? 16992;
  if (tlsPort !== 0 && tlsPort === httpPort) {
    throw new ScsError('SCS_SIM_CONFIG_INVALID', `the TLS and HTTP ports must differ (both ${tlsPort})`);
  }
  const scsText = opts.scs ?? `127.0.0.1:${DEFAULT_SCS_PORT}`;
  const scs = parseHostPort(scsText, DEFAULT_SCS_PORT);
  if (net.isIPv6(scs.host)) {
    throw new ScsError('SCS_SIM_CONFIG_INVALID', '--scs must be IPv4 or a name: devices send hellos from 127.x.y.z');
  }
  const seed = opts.seed ?? DEFAULT_SEED;
  const faultsText = opts.faults ?? '';
  const faultSpec = parseFaultSpec(faultsText);

  let psks = opts.psks;
  if (psks === undefined) {
    if (opts.pskFile === undefined) throw new ScsError('SCS_SIM_CONFIG_INVALID', 'the fleet needs psks or a pskFile');
    psks = await readPskFile(opts.pskFile);
  }
  const plans: DevicePlan[] = planFleet({
    devices: opts.devices,
    psks,
    seed,
    faults: faultSpec,
    ...(opts.latencyMs === undefined ? {} : { latencyMs: opts.latencyMs }),
    mebxPassword: opts.mebxPassword ?? DEFAULT_FLEET_MEBX_PASSWORD,
    ...(opts.amtVersion === undefined ? {} : { amtVersion: opts.amtVersion }),
    ...(opts.domainName === undefined ? {} : { domainName: opts.domainName }),
    addressBase: opts.addressBase ?? DEFAULT_ADDRESS_BASE,
  });

  const startedAt = Date.now();
  const env: MemberEnv = {
    scsHost: scs.host,
    scsPort: scs.port,
    timeFactor,
    windowMs,
    tlsPort,
    httpPort,
    startedAt,
    helloSpreadMs: opts.helloSpreadMs ?? 0,
    fleetSize: plans.length,
  };
  const keyPool = await generateKeyPool(Math.min(opts.keyPoolSize ?? DEFAULT_KEY_POOL_SIZE, opts.devices));

  const perWorker = opts.maxDevicesPerWorker ?? DEFAULT_MAX_DEVICES_PER_WORKER;
  const mode = opts.workers ?? 'auto';
  const inline = mode === 'inline' || (mode === 'auto' && plans.length <= perWorker);
  const groups = inline ? [plans] : slices(plans, Math.ceil(plans.length / perWorker));
  const shards: Shard[] = groups.map((g, i) =>
    inline ? new InlineShard(g, { ...env, keyPool }) : new ProcessShard(`fleet worker ${i + 1}`, g, env, keyPool),
  );
  const shardOf: Shard[] = [];
  groups.forEach((g, i) => {
    for (const p of g) shardOf[p.index] = shards[i] as Shard;
  });

  // Changes may arrive while other shards are still starting: buffer them until the Fleet exists.
  const early: DeviceRecord[][] = [];
  const buffer = (batch: DeviceRecord[]): void => void early.push(batch);
  for (const s of shards) s.on('changes', buffer);
  const started = await Promise.allSettled(shards.map((s) => s.start()));
  for (const s of shards) s.off('changes', buffer);
  const failure = started.find((r) => r.status === 'rejected');
  if (failure !== undefined) {
    await Promise.all(shards.map((s) => s.stop()));
    throw failure.reason;
  }
  const records: DeviceRecord[] = new Array<DeviceRecord>(plans.length);
  for (const r of started) if (r.status === 'fulfilled') for (const rec of r.value) records[rec.index] = rec;
  for (const batch of early) for (const rec of batch) records[rec.index] = rec;

  const fleet = new Fleet(records, shards, shardOf, {
    seed,
    faults: faultsText,
    startedAt,
    scs: `${scs.host}:${scs.port}`,
    ...(opts.stateFile === undefined ? {} : { stateFile: opts.stateFile }),
    ...(opts.stateFileDebounceMs === undefined ? {} : { stateFileDebounceMs: opts.stateFileDebounceMs }),
  });
  await fleet.flushStateFile();
  return fleet;
}
