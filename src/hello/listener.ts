import net, { type AddressInfo, type Socket } from 'node:net';
import { ScsError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { HelloDecoder, malformedReason, type Hello, type HelloMalformedReason } from './decode.ts';

/**
 * The hello port (protocol.md §1): one TCP connection per hello, device to server; the device
 * writes its message and closes, and the server never answers on that connection. This module
 * only decodes and hands over: looking up PIDs and deduplicating devices belong to the caller.
 */

export interface MalformedHello {
  readonly reason: HelloMalformedReason;
  readonly message: string;
}

export interface HelloListenerOptions {
  readonly host: string;
  /** 0 picks a free port (tests); see `address()` once listening. */
  readonly port: number;
  /** Open hello connections at most (config helloMaxConnections); more are closed on accept. */
  readonly maxConnections: number;
  /**
   * Open hello connections from one source address at most (config
   * helloMaxConnectionsPerAddress); more are closed on accept. Absent: no per-address cap.
   */
  readonly maxConnectionsPerAddress?: number;
  /** Time one connection may stay open (config helloTimeoutMs). */
  readonly timeoutMs: number;
  /**
   * Completed connections the kernel queues until they are accepted (config helloBacklog;
   * default 4096). Linux caps it at net.core.somaxconn. When the queue is full the kernel drops
   * SYNs and the device's hello is lost until its next scheduled one.
   */
  readonly backlog?: number;
  /** Called once per well-formed hello. A throw or rejection is counted and logged, never fatal. */
  readonly onHello: (hello: Hello, remoteAddress: string) => void | Promise<void>;
  readonly onMalformed?: (malformed: MalformedHello, remoteAddress: string) => void;
  /** Called for each connection closed on accept by maxConnectionsPerAddress. */
  readonly onRefused?: (refusal: ConnectionRefusal) => void;
  readonly log?: Logger;
}

/** A connection closed on accept because its source address already held its share. */
export interface ConnectionRefusal {
  readonly remoteAddress: string;
  /** maxConnectionsPerAddress. */
  readonly limit: number;
  /** The first refusal since this address last had a connection accepted: audit this one. */
  readonly first: boolean;
  /** Refusals of this address in its current episode, this one included. */
  readonly refused: number;
}

export interface HelloCounters {
  /** TCP connections accepted (not counting those dropped for maxConnections or per address). */
  readonly connections: number;
  /** Hello connections open now. */
  readonly open: number;
  /** Source addresses with a connection open now (the per-address table's size). */
  readonly openAddresses: number;
  /** Well-formed hellos handed to onHello. */
  readonly received: number;
  readonly malformed: Readonly<Partial<Record<HelloMalformedReason, number>>>;
  readonly dropped: {
    /** Closed on accept: maxConnections were already open. */
    readonly maxConnections: number;
    /** Closed on accept: maxConnectionsPerAddress were already open from that address. */
    readonly perAddress: number;
    /** Still incomplete when timeoutMs ran out. */
    readonly timeout: number;
    /** Reset or failed by the peer before a whole hello arrived. */
    readonly reset: number;
  };
  /** onHello threw or rejected. */
  readonly handlerErrors: number;
}

export interface HelloListener {
  listen(): Promise<AddressInfo>;
  address(): AddressInfo;
  /** Stops accepting, closes every open hello connection and waits for hellos being handed over. */
  close(): Promise<void>;
  counters(): HelloCounters;
}

/** Node's own listen backlog is 511, too short for a fleet saying hello within a minute. */
export const DEFAULT_HELLO_BACKLOG = 4096;

/** Open connections of one source address, and its refusals since one was last accepted. */
interface AddressSlot {
  open: number;
  refused: number;
}

/** One hello connection. Kept on its socket, so the event handlers are shared, not made per connection. */
interface Connection {
  readonly socket: Socket;
  readonly remote: string;
  readonly slot: AddressSlot;
  readonly startedAt: number;
  readonly decoder: HelloDecoder;
  settled: boolean;
}

const CONNECTION = Symbol('helloConnection');
type HelloSocket = Socket & { [CONNECTION]: Connection };

const ignore = (): void => undefined;

export function createHelloListener(options: HelloListenerOptions): HelloListener {
  const { log, timeoutMs } = options;
  const perAddressLimit = options.maxConnectionsPerAddress ?? Infinity;
  /**
   * Open connections in the order they were accepted, which is also the order their time runs
   * out: the sweep below looks at the oldest ones only.
   */
  const open = new Set<Connection>();
  /** One entry per source address with a connection open: at most maxConnections entries. */
  const byAddress = new Map<string, AddressSlot>();
  /** Handler calls not settled yet: close() waits for them, so none runs after the store closes. */
  const handling = new Set<Promise<unknown>>();
  const counts = {
    connections: 0,
    received: 0,
    malformed: {} as Partial<Record<HelloMalformedReason, number>>,
    dropped: { maxConnections: 0, perAddress: 0, timeout: 0, reset: 0 },
    handlerErrors: 0,
  };
  /** Connections dropped for maxConnections since one was last accepted (one warning per episode). */
  let overflow = 0;

  const server = net.createServer({ allowHalfOpen: false });
  server.maxConnections = options.maxConnections;
  // Node closes connections beyond maxConnections itself and reports each one here.
  server.on('drop', (data) => {
    counts.dropped.maxConnections++;
    if (overflow++ === 0) {
      log?.warn(
        { remoteAddress: data?.remoteAddress, limit: options.maxConnections },
        'hello connections dropped: too many open',
      );
    }
  });
  server.on('connection', handle);

  function deliver(hello: Hello, remote: string): void {
    counts.received++;
    try {
      const result = options.onHello(hello, remote);
      if (result instanceof Promise) {
        const pending: Promise<unknown> = result.then(undefined, (error: unknown) =>
          handlerFailed(error, hello, remote),
        );
        handling.add(pending);
        void pending.then(() => handling.delete(pending));
      }
    } catch (error) {
      handlerFailed(error, hello, remote);
    }
  }

  function handlerFailed(error: unknown, hello: Hello, remote: string): void {
    counts.handlerErrors++;
    log?.error({ err: error, remoteAddress: remote, uuid: hello.uuid }, 'hello handler failed');
  }

  function refuse(error: unknown, remote: string): void {
    const reason = malformedReason(error);
    if (reason === undefined) throw error;
    counts.malformed[reason] = (counts.malformed[reason] ?? 0) + 1;
    const message = error instanceof Error ? error.message : String(error);
    // Debug: counted here and audited in batches by the caller; a flood of garbage must not become a log line each.
    log?.debug({ remoteAddress: remote, reason }, message);
    options.onMalformed?.({ reason, message }, remote);
  }

  function handle(socket: Socket): void {
    const remote = socket.remoteAddress ?? '';
    let slot = byAddress.get(remote);
    if (slot === undefined) {
      slot = { open: 0, refused: 0 };
      byAddress.set(remote, slot);
    } else if (slot.open >= perAddressLimit) {
      // Not read: one host must not hold every slot with slow connections (docs/security.md).
      slot.refused++;
      counts.dropped.perAddress++;
      socket.on('error', ignore);
      socket.destroy();
      options.onRefused?.({
        remoteAddress: remote,
        limit: perAddressLimit,
        first: slot.refused === 1,
        refused: slot.refused,
      });
      return;
    }
    slot.open++;
    slot.refused = 0;
    overflow = 0;
    counts.connections++;
    const c: Connection = {
      socket,
      remote,
      slot,
      startedAt: performance.now(),
      decoder: new HelloDecoder(),
      settled: false,
    };
    (socket as HelloSocket)[CONNECTION] = c;
    open.add(c);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
  }

  /** Closes the connection and gives its slots back; the hello (if any) is handled by the caller. */
  function finish(c: Connection): void {
    c.settled = true;
    open.delete(c);
    if (--c.slot.open === 0) byAddress.delete(c.remote);
    c.socket.destroy();
  }

  /** Hands over a complete hello (or the reason it is malformed) exactly once. */
  function conclude(c: Connection): void {
    if (c.settled) return;
    finish(c);
    let hello: Hello;
    try {
      hello = c.decoder.end();
    } catch (error) {
      refuse(error, c.remote);
      return;
    }
    deliver(hello, c.remote);
  }

  function onData(this: Socket, chunk: Buffer): void {
    const c = (this as HelloSocket)[CONNECTION];
    if (c.settled) return;
    try {
      c.decoder.push(chunk);
    } catch (error) {
      finish(c);
      refuse(error, c.remote);
    }
  }

  function onEnd(this: Socket): void {
    conclude((this as HelloSocket)[CONNECTION]);
  }

  function onError(this: Socket, error: Error): void {
    const c = (this as HelloSocket)[CONNECTION];
    if (c.settled) return;
    if (c.decoder.complete) return conclude(c);
    counts.dropped.reset++;
    log?.debug({ remoteAddress: c.remote, err: error }, 'hello connection failed');
    finish(c);
  }

  /** The peer's end or error came first in every path known; this is the safety net. */
  function onClose(this: Socket): void {
    conclude((this as HelloSocket)[CONNECTION]);
  }

  /**
   * A total time bound, not an idle one: a sender trickling a byte a second must not hold a
   * slot. One sweep timer for all connections (not a timer each): every connection is cut
   * between timeoutMs and timeoutMs + one tick after it was accepted.
   */
  const tickMs = Math.max(5, Math.min(250, Math.floor(timeoutMs / 4)));
  let sweeper: NodeJS.Timeout | undefined;
  function sweep(): void {
    const now = performance.now();
    for (const c of open) {
      if (now - c.startedAt < timeoutMs) break;
      // A whole hello whose sender did not close is still a hello (nothing after it arrived).
      if (c.decoder.complete) {
        conclude(c);
        continue;
      }
      counts.dropped.timeout++;
      log?.debug({ remoteAddress: c.remote, bytes: c.decoder.bytesReceived }, 'hello connection timed out');
      finish(c);
    }
  }

  return {
    listen() {
      return new Promise<AddressInfo>((resolve, reject) => {
        const onError = (cause: NodeJS.ErrnoException): void => {
          reject(
            new ScsError('SCS_LISTEN_FAILED', `cannot listen for hellos on ${options.host}:${options.port}`, {
              cause,
              details: { host: options.host, port: options.port, errno: cause.code ?? null },
            }),
          );
        };
        server.once('error', onError);
        server.listen(options.port, options.host, options.backlog ?? DEFAULT_HELLO_BACKLOG, () => {
          server.off('error', onError);
          server.on('error', (error) => log?.error({ err: error }, 'hello listener error'));
          sweeper = setInterval(sweep, tickMs).unref();
          resolve(server.address() as AddressInfo);
        });
      });
    },
    address() {
      return server.address() as AddressInfo;
    },
    async close() {
      clearInterval(sweeper);
      await new Promise<void>((resolve) => {
        // A whole hello is still handed over; a partial one is cut without a verdict.
        for (const c of open) {
          if (c.decoder.complete) conclude(c);
          else finish(c);
        }
        if (!server.listening) return resolve();
        server.close(() => resolve());
      });
      await Promise.all(handling);
    },
    counters() {
      return {
        ...counts,
        open: open.size,
        openAddresses: byAddress.size,
        malformed: { ...counts.malformed },
        dropped: { ...counts.dropped },
      };
    },
  };
}
