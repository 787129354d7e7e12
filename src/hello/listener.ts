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
  readonly log?: Logger;
}

export interface HelloCounters {
  /** TCP connections accepted (not counting those dropped for maxConnections). */
  readonly connections: number;
  /** Well-formed hellos handed to onHello. */
  readonly received: number;
  readonly malformed: Readonly<Partial<Record<HelloMalformedReason, number>>>;
  readonly dropped: {
    /** Closed on accept: maxConnections were already open. */
    readonly maxConnections: number;
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

export function createHelloListener(options: HelloListenerOptions): HelloListener {
  const { log } = options;
  const open = new Set<Socket>();
  /** Handler calls not settled yet: close() waits for them, so none runs after the store closes. */
  const handling = new Set<Promise<unknown>>();
  const counts = {
    connections: 0,
    received: 0,
    malformed: {} as Partial<Record<HelloMalformedReason, number>>,
    dropped: { maxConnections: 0, timeout: 0, reset: 0 },
    handlerErrors: 0,
  };

  const server = net.createServer({ allowHalfOpen: false });
  server.maxConnections = options.maxConnections;
  // Node closes connections beyond maxConnections itself and reports each one here.
  server.on('drop', (data) => {
    counts.dropped.maxConnections++;
    log?.warn(
      { remoteAddress: data?.remoteAddress, limit: options.maxConnections },
      'hello connection dropped: too many open',
    );
  });
  server.on('connection', (socket) => handle(socket));

  function deliver(hello: Hello, remote: string): void {
    counts.received++;
    const onError = (error: unknown): void => {
      counts.handlerErrors++;
      log?.error({ err: error, remoteAddress: remote, uuid: hello.uuid }, 'hello handler failed');
    };
    try {
      const result = options.onHello(hello, remote);
      if (result instanceof Promise) {
        const pending = result.catch(onError).finally(() => handling.delete(pending));
        handling.add(pending);
      }
    } catch (error) {
      onError(error);
    }
  }

  function refuse(error: unknown, remote: string): void {
    const reason = malformedReason(error);
    if (reason === undefined) throw error;
    counts.malformed[reason] = (counts.malformed[reason] ?? 0) + 1;
    const message = error instanceof Error ? error.message : String(error);
    log?.info({ remoteAddress: remote, reason }, message);
    options.onMalformed?.({ reason, message }, remote);
  }

  function handle(socket: Socket): void {
    counts.connections++;
    open.add(socket);
    const remote = socket.remoteAddress ?? '';
    const decoder = new HelloDecoder();
    let settled = false;

    const finish = (): void => {
      settled = true;
      clearTimeout(timer);
      socket.destroy();
    };
    /** Hands over a complete hello (or the reason it is malformed) exactly once. */
    const conclude = (): void => {
      if (settled) return;
      finish();
      let hello: Hello;
      try {
        hello = decoder.end();
      } catch (error) {
        refuse(error, remote);
        return;
      }
      deliver(hello, remote);
    };

    // A total time bound, not an idle one: a sender trickling a byte a second must not hold a slot.
    const timer = setTimeout(() => {
      if (settled) return;
      // A whole hello whose sender did not close is still a hello (nothing after it arrived).
      if (decoder.complete) return conclude();
      counts.dropped.timeout++;
      log?.info({ remoteAddress: remote, bytes: decoder.bytesReceived }, 'hello connection timed out');
      finish();
    }, options.timeoutMs);

    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      try {
        decoder.push(chunk);
      } catch (error) {
        finish();
        refuse(error, remote);
      }
    });
    socket.on('end', conclude);
    socket.on('error', (error) => {
      if (settled) return;
      if (decoder.complete) return conclude();
      counts.dropped.reset++;
      log?.info({ remoteAddress: remote, err: error }, 'hello connection failed');
      finish();
    });
    socket.on('close', () => {
      open.delete(socket);
      if (!settled) conclude();
    });
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
          resolve(server.address() as AddressInfo);
        });
      });
    },
    address() {
      return server.address() as AddressInfo;
    },
    async close() {
      await new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        if (!server.listening) return resolve();
        server.close(() => resolve());
      });
      await Promise.all(handling);
    },
    counters() {
      return { ...counts, malformed: { ...counts.malformed }, dropped: { ...counts.dropped } };
    },
  };
}
