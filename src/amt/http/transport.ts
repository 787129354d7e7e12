import type { Duplex } from 'node:stream';
import { ScsError } from '../../errors.ts';
import { abortError } from '../abort.ts';
import { HttpResponseParser, type HttpResponse } from './response.ts';

/**
 * A minimal HTTP/1.1 client over one already-connected socket (the TLS-PSK socket), with
 * keep-alive. One request at a time: each call gets its own promise, timer, AbortSignal and
 * socket listeners, and waits its turn behind the call before it; nothing is parked on shared
 * state. When the server closes the connection (`Connection: close`, or an idle close), the next
 * request opens a new one through the injected `connect`. See docs/amt-client.md for why this
 * is not Node's http.Agent.
 */

export interface HttpRequest {
  readonly method: 'POST' | 'GET';
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /**
   * Safe to send again (WS-Man Get/Enumerate/Pull/Identify): if a kept-alive connection turns
   * out to have been closed by the server before any reply byte, the request is retried once on
   * a new connection. Methods (CommitChanges...) are never re-sent blindly.
   */
  readonly idempotent?: boolean;
}

export interface RequestOptions {
  readonly signal?: AbortSignal;
  /** Bound on this request (queueing, connecting, sending and reading); default: the transport's. */
  readonly timeoutMs?: number;
  /**
   * A bound shared with other requests (`performance.now()` by which this one must settle): the
   * AMT client's deadline for a whole call, which may span a Digest 401 and an enumeration's
   * pulls. The earlier of this and `timeoutMs` applies; one that has passed fails at once.
   */
  readonly deadline?: number;
  /** What running out of time rejects with (default: SCS_AMT_TIMEOUT "no reply ... within"). */
  readonly timeoutError?: () => Error;
}

export interface HttpTransport {
  request(request: HttpRequest, options?: RequestOptions): Promise<HttpResponse>;
  /** Closes the connection; later requests reconnect. */
  close(): void;
  /** Connections opened so far (1 for a session that kept one socket alive throughout). */
  readonly connections: number;
  /** HTTP bytes (head and body, before TLS) written and read so far, over every connection. */
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

export interface SocketTransportOptions {
  /** Opens a fresh connection (e.g. `(signal) => connectPsk({ ..., signal })`). */
  readonly connect: (signal: AbortSignal) => Promise<Duplex>;
  /** Value of the Host header (RFC 9112 §3.2), e.g. `192.168.1.20:16993`. */
  readonly host: string;
  readonly timeoutMs?: number;
  readonly maxBodyBytes?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export function createSocketTransport(options: SocketTransportOptions): HttpTransport {
  let socket: Duplex | undefined;
  /** The socket has already carried a request (a close before any reply byte may be an idle close). */
  let reused = false;
  let connections = 0;
  let bytesSent = 0;
  let bytesReceived = 0;
  let tail: Promise<void> = Promise.resolve();

  const drop = (s: Duplex | undefined): void => {
    if (s === undefined) return;
    if (socket === s) socket = undefined;
    s.destroy();
  };

  const usable = (s: Duplex | undefined): s is Duplex =>
    s !== undefined && !s.destroyed && s.writable && s.readable && !s.readableEnded;

  async function open(signal: AbortSignal): Promise<Duplex> {
    if (usable(socket)) return socket;
    drop(socket);
    const s = await options.connect(signal);
    connections++;
    // Between requests nobody else listens: keep errors from crashing the process, and forget
    // a socket the server closed so the next request reconnects.
    s.on('error', () => drop(s));
    s.on('close', () => {
      if (socket === s) socket = undefined;
    });
    socket = s;
    reused = false;
    return s;
  }

  function serialize(request: HttpRequest): Buffer {
    let head = `${request.method} ${request.path} HTTP/1.1\r\nHost: ${options.host}\r\n`;
    for (const [name, value] of Object.entries(request.headers)) {
      if (/[\r\n]/.test(name + value)) throw new ScsError('SCS_AMT_HTTP', `header ${name} holds a line break`);
      head += `${name}: ${value}\r\n`;
    }
    // Content-Length counts bytes, not characters (§4).
    head += `Content-Length: ${request.body.length}\r\n\r\n`;
    return Buffer.concat([Buffer.from(head, 'latin1'), request.body]);
  }

  /** One request/response on the current (or a new) connection. */
  async function exchange(request: HttpRequest, signal: AbortSignal): Promise<HttpResponse> {
    const s = await open(signal);
    const wasReused = reused;
    reused = true;
    const parser = new HttpResponseParser(
      options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes },
    );
    let received = 0;
    const response = await new Promise<HttpResponse>((resolve, reject) => {
      const cleanup = (): void => {
        s.off('data', onData);
        s.off('end', onEnd);
        s.off('close', onEnd);
        s.off('error', onError);
        signal.removeEventListener('abort', onAbort);
      };
      const fail = (error: Error): void => {
        cleanup();
        drop(s);
        reject(error);
      };
      const onData = (chunk: Buffer): void => {
        received += chunk.length;
        bytesReceived += chunk.length;
        try {
          const done = parser.push(chunk);
          if (done === undefined) return;
          cleanup();
          // A server that sends more than one reply per request is out of step with us.
          if (parser.extraBytes > 0 || !done.keepAlive) drop(s);
          resolve(done);
        } catch (error) {
          fail(error as Error);
        }
      };
      const onEnd = (): void => {
        try {
          const done = parser.end();
          cleanup();
          drop(s);
          resolve(done);
        } catch (error) {
          if (error instanceof ScsError) {
            fail(
              new ScsError(
                'SCS_AMT_CONNECTION_LOST',
                `the device closed the connection before the whole reply arrived`,
                {
                  cause: error,
                  details: { bytesReceived: received, reusedConnection: wasReused },
                },
              ),
            );
          } else fail(error as Error);
        }
      };
      const onError = (error: Error): void =>
        fail(
          new ScsError('SCS_AMT_CONNECTION_LOST', `the connection to the device failed: ${error.message}`, {
            cause: error,
            details: { bytesReceived: received, reusedConnection: wasReused },
          }),
        );
      const onAbort = (): void => fail(abortError(signal));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      s.on('data', onData);
      s.on('end', onEnd);
      s.on('close', onEnd);
      s.on('error', onError);
      const bytes = serialize(request);
      bytesSent += bytes.length;
      s.write(bytes);
    });
    return response;
  }

  return {
    get connections() {
      return connections;
    },
    get bytesSent() {
      return bytesSent;
    },
    get bytesReceived() {
      return bytesReceived;
    },
    async request(request, opts = {}) {
      const timeoutMs = opts.timeoutMs ?? options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const timedOut = (): Error =>
        opts.timeoutError?.() ??
        new ScsError('SCS_AMT_TIMEOUT', `no reply from the device within ${timeoutMs} ms`, {
          details: { timeoutMs },
        });
      const budget = opts.deadline === undefined ? timeoutMs : Math.min(timeoutMs, opts.deadline - performance.now());
      if (budget <= 0) throw timedOut();
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(timedOut()), budget);
      const onCallerAbort = (): void => controller.abort(abortError(opts.signal));
      if (opts.signal?.aborted) onCallerAbort();
      opts.signal?.addEventListener('abort', onCallerAbort, { once: true });
      const signal = controller.signal;

      // Wait for the call ahead of us; our turn ends when we settle, whatever happens.
      const previous = tail;
      let release = (): void => undefined;
      const mine = new Promise<void>((r) => (release = r));
      tail = previous.then(() => mine);
      try {
        await waitOrAbort(previous, signal);
        try {
          return await exchange(request, signal);
        } catch (error) {
          const idleClose =
            error instanceof ScsError &&
            error.code === 'SCS_AMT_CONNECTION_LOST' &&
            error.details.reusedConnection === true &&
            error.details.bytesReceived === 0;
          if (!idleClose || request.idempotent !== true || signal.aborted) throw error;
          return await exchange(request, signal);
        }
      } finally {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onCallerAbort);
        release();
      }
    },
    close() {
      drop(socket);
    },
  };
}

function waitOrAbort(turn: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    void turn.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
