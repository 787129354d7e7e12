import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, ScsError, type ErrorCode } from '../../src/errors.ts';
import type { SimDevice } from '../device/device.ts';
import { DeviceHost, type DeviceHostOptions } from './host.ts';
import type { PooledKeyPem } from './key-pool.ts';
import type { DeviceRecord, MemberEnv } from './member.ts';
import type { DevicePlan } from './plan.ts';
import type { FromWorker, ToWorker } from './worker-protocol.ts';

interface ShardEvents {
  changes: [DeviceRecord[]];
  /** A worker died or reported a failure after it had started. */
  failed: [ScsError];
}

/** A slice of the fleet: run in this process, or in a worker process. */
export interface Shard extends EventEmitter<ShardEvents> {
  start(): Promise<DeviceRecord[]>;
  stop(): Promise<void>;
  reboot(index: number): void;
  /** The device object when it runs in this process. */
  local(index: number): SimDevice | undefined;
}

export class InlineShard extends EventEmitter<ShardEvents> implements Shard {
  readonly #host: DeviceHost;

  constructor(plans: readonly DevicePlan[], opts: DeviceHostOptions) {
    super();
    this.#host = new DeviceHost(plans, opts);
    this.#host.on('changes', (r) => this.emit('changes', r));
  }

  start(): Promise<DeviceRecord[]> {
    return this.#host.start();
  }

  stop(): Promise<void> {
    return this.#host.stop();
  }

  reboot(index: number): void {
    this.#host.member(index)?.device.reboot();
  }

  local(index: number): SimDevice | undefined {
    return this.#host.member(index)?.device;
  }
}

/** Worker entry and the node flags to run it: from source (.ts) through tsx's loader, else the built .js. */
function workerCommand(): { path: string; execArgv: string[] } {
  const fromSource = import.meta.url.endsWith('.ts');
  const path = fileURLToPath(new URL(fromSource ? './worker.ts' : './worker.js', import.meta.url));
  const execArgv = fromSource ? ['--import', import.meta.resolve('tsx'), '--no-warnings=ExperimentalWarning'] : [];
  return { path, execArgv };
}

const STOP_GRACE_MS = 15_000;

function toScsError(code: string, message: string): ScsError {
  const known = Object.hasOwn(ERROR_CODES, code) ? (code as ErrorCode) : 'SCS_SIM_WORKER_FAILED';
  return new ScsError(known, message);
}

/**
 * A worker process running a DeviceHost (simulator/fleet/worker.ts). Its open files count
 * against its own limit, not the parent's: that is why a large fleet is split.
 */
export class ProcessShard extends EventEmitter<ShardEvents> implements Shard {
  readonly #plans: DevicePlan[];
  readonly #env: MemberEnv;
  readonly #keyPool: PooledKeyPem[];
  readonly #name: string;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #started = false;
  #stopping = false;

  constructor(name: string, plans: DevicePlan[], env: MemberEnv, keyPool: PooledKeyPem[]) {
    super();
    this.#name = name;
    this.#plans = plans;
    this.#env = env;
    this.#keyPool = keyPool;
  }

  /** The worker's process id, while it runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  start(): Promise<DeviceRecord[]> {
    const { path, execArgv } = workerCommand();
    const child = fork(path, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    return new Promise<DeviceRecord[]>((resolve, reject) => {
      child.on('message', (msg: FromWorker) => {
        switch (msg.type) {
          case 'started':
            this.#started = true;
            resolve(msg.records);
            break;
          case 'changes':
            this.emit('changes', msg.records);
            break;
          case 'failed': {
            const e = toScsError(msg.code, `${this.#name}: ${msg.message}`);
            if (this.#started) this.emit('failed', e);
            else reject(e);
            break;
          }
          case 'stopped':
            break;
        }
      });
      child.once('error', (cause) => {
        const e = new ScsError('SCS_SIM_WORKER_FAILED', `${this.#name} could not run: ${cause.message}`, { cause });
        if (this.#started) this.emit('failed', e);
        else reject(e);
      });
      child.once('exit', (code, signal) => {
        if (this.#stopping) return;
        const e = new ScsError(
          'SCS_SIM_WORKER_FAILED',
          `${this.#name} exited unexpectedly (${signal ?? `code ${code ?? 'unknown'}`})`,
        );
        if (this.#started) this.emit('failed', e);
        else reject(e);
      });
      this.#send({ type: 'start', plans: this.#plans, env: this.#env, keyPool: this.#keyPool });
    });
  }

  #send(msg: ToWorker): void {
    if (this.#child?.connected === true) this.#child.send(msg);
  }

  reboot(index: number): void {
    this.#send({ type: 'reboot', index });
  }

  local(): undefined {
    return undefined;
  }

  /** Asks the worker to stop its devices and exit; kills it if it has not within the grace time. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined || this.#stopping) return this.#exited;
    this.#stopping = true;
    if (child.exitCode !== null || child.signalCode !== null) return;
    this.#send({ type: 'stop' });
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.#exited;
    clearTimeout(timer);
  }
}
