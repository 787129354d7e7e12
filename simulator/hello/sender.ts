import { EventEmitter } from 'node:events';
import net from 'node:net';
import { ScsError } from '../../src/errors.ts';
import { encodePkiHello, encodePskHello, type CertHash } from './encode.ts';
import { checkTimeFactor, DEFAULT_PSK_WINDOW_MS, nominalHelloDelayMs } from './schedule.ts';

/** What the device puts in its hello; read again before every hello (the PID changes after a partial unprovision). */
export interface HelloIdentity {
  uuid: string;
  /** The PID of a PSK hello (version 2); ignored when `hashes` is given. */
  pid: string;
  adminCredentialsSet: boolean;
  /** Trusted root hashes: the device is in PKI setup mode and sends a version 3 hello (§1b). */
  hashes?: readonly CertHash[];
}

export interface HelloSenderOptions {
  /** The SCS (protocol.md §1: configured IP or name); IPv4 when `localAddress` is IPv4. */
  scsHost: string;
  /** Default 9971. */
  scsPort?: number;
  /** The device's own address: the SCS connects back to the hello's source address. */
  localAddress?: string;
  /** Multiplies every delay and the window (§1d). Default 1 (real time). */
  timeFactor?: number;
  /** Nominal provisioning window; default 6 h (§1d). */
  windowMs?: number;
  /** Real time a connect + write may take before it counts as failed. Default 10 s. */
  connectTimeoutMs?: number;
  /** Returns undefined when the device has nothing to announce (then no hello is sent). */
  identity: () => HelloIdentity | undefined;
}

export interface HelloAttempt {
  /** The RetryCount written in this hello: 0 for the first of the window, then rising. */
  retryCount: number;
  ok: boolean;
  /** Error code (ECONNREFUSED, ETIMEDOUT, ...) when not ok. */
  error?: string;
}

interface HelloSenderEvents {
  attempt: [HelloAttempt];
  'window-closed': [];
}

/**
 * Sends hellos for one device on the §1d schedule: one TCP connection per hello from the
 * device's own address, write 32 bytes, close; the SCS never answers on it. A failed connect is
 * not retried early: the next hello simply comes on schedule. `start()` opens a new window
 * (RetryCount back to 0); `stop()` ends it (provisioned, shut down).
 */
export class HelloSender extends EventEmitter<HelloSenderEvents> {
  readonly #opts: Required<Omit<HelloSenderOptions, 'localAddress'>> & { localAddress: string | undefined };
  #timer: NodeJS.Timeout | undefined;
  #windowStart = 0;
  #nextIndex = 0;
  #nextOffset = 0;
  #running = false;
  #windowClosed = false;
  readonly #inFlight = new Set<net.Socket>();
  #sentTotal = 0;
  #lastError: string | undefined;
  /** Bumped by start/stop so a connection from an earlier window never reports into this one. */
  #generation = 0;

  constructor(options: HelloSenderOptions) {
    super();
    const scsPort = options.scsPort ?? 9971;
    if (!Number.isInteger(scsPort) || scsPort < 1 || scsPort > 65535) {
      throw new ScsError('SCS_SIM_CONFIG_INVALID', `SCS port must be 1..65535, got ${scsPort}`);
    }
    const windowMs = options.windowMs ?? DEFAULT_PSK_WINDOW_MS;
    if (!(windowMs > 0)) throw new ScsError('SCS_SIM_CONFIG_INVALID', `hello window must be > 0 ms`);
    this.#opts = {
      scsHost: options.scsHost,
      scsPort,
      localAddress: options.localAddress,
      timeFactor: checkTimeFactor(options.timeFactor ?? 1),
      windowMs,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      identity: options.identity,
    };
  }

  /** True between start() and stop() / the end of the window. */
  get running(): boolean {
    return this.#running;
  }

  /** True when the last window ran out without the device being configured. */
  get windowClosed(): boolean {
    return this.#windowClosed;
  }

  /** RetryCount of the next hello (= hellos attempted in this window). */
  get retryCount(): number {
    return this.#nextIndex;
  }

  /** Hellos written completely since this sender was made, over all windows. */
  get sentTotal(): number {
    return this.#sentTotal;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Opens a new window: the first hello goes out now, RetryCount 0. Restarts a running window. */
  start(): void {
    this.#clearTimer();
    this.#generation++;
    this.#running = true;
    this.#windowClosed = false;
    this.#windowStart = performance.now();
    this.#nextIndex = 0;
    this.#nextOffset = 0;
    this.#arm();
  }

  /** Ends the window; hellos in flight are abandoned. */
  stop(): void {
    this.#running = false;
    this.#generation++;
    this.#clearTimer();
    for (const s of this.#inFlight) s.destroy();
    this.#inFlight.clear();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Times are offsets from the window start, so timer lateness does not add up over a window. */
  #arm(): void {
    const f = this.#opts.timeFactor;
    const elapsed = performance.now() - this.#windowStart;
    if (this.#nextOffset >= this.#opts.windowMs) {
      this.#timer = setTimeout(() => this.#closeWindow(), Math.max(0, this.#opts.windowMs * f - elapsed));
      return;
    }
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, this.#nextOffset * f - elapsed));
  }

  #closeWindow(): void {
    this.#timer = undefined;
    this.#running = false;
    this.#windowClosed = true;
    this.emit('window-closed');
  }

  #fire(): void {
    this.#timer = undefined;
    if (!this.#running) return;
    const retryCount = this.#nextIndex++;
    this.#nextOffset += nominalHelloDelayMs(this.#nextIndex);
    this.#arm();
    const id = this.#opts.identity();
    if (id !== undefined) this.#send({ ...id, retryCount });
  }

  #send(fields: HelloIdentity & { retryCount: number }): void {
    let hello: Buffer;
    try {
      hello = fields.hashes === undefined ? encodePskHello(fields) : encodePkiHello(fields, fields.hashes);
    } catch (e) {
      this.#report(fields.retryCount, e instanceof ScsError ? e.code : 'EENCODE');
      return;
    }
    const { scsHost, scsPort, localAddress, connectTimeoutMs } = this.#opts;
    const socket = net.connect({
      host: scsHost,
      port: scsPort,
      ...(localAddress === undefined ? {} : { localAddress, family: net.isIPv6(localAddress) ? 6 : 4 }),
    });
    this.#inFlight.add(socket);
    const generation = this.#generation;
    let done = false;
    const finish = (error: string | undefined): void => {
      if (done) return;
      done = true;
      this.#inFlight.delete(socket);
      socket.destroy();
      if (generation !== this.#generation) return;
      if (error === undefined) this.#sentTotal++;
      this.#report(fields.retryCount, error);
    };
    socket.setNoDelay(true);
    socket.setTimeout(connectTimeoutMs, () => finish('ETIMEDOUT'));
    socket.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? 'EUNKNOWN'));
    // The hello is complete once our side has flushed it and sent FIN; the SCS never replies.
    socket.on('connect', () => socket.end(hello, () => finish(undefined)));
    socket.on('close', () => finish('ECONNRESET'));
  }

  #report(retryCount: number, error: string | undefined): void {
    this.#lastError = error;
    this.emit('attempt', error === undefined ? { retryCount, ok: true } : { retryCount, ok: false, error });
  }
}
