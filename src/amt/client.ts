import { randomUUID } from 'node:crypto';
import { ScsError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Secret } from '../secret.ts';
import { abortError } from './abort.ts';
import { createDigestClient, type DigestClient, type PostOptions } from './http/digest-client.ts';
import { header, type HttpResponse } from './http/response.ts';
import type { HttpTransport } from './http/transport.ts';
import { buildEnvelope, FAULT_ACTION, type WsmanRequest } from './wsman/envelope.ts';
import { faultError, readFault } from './wsman/fault.ts';
import type { Operation } from './wsman/operation.ts';
import { DEFAULT_MAX_REPLY_BYTES, malformedReply, parseWsman, type WsmanReply } from './wsman/parse.ts';

/**
 * The AMT client: `call(op, { signal })` runs one WS-Management operation over HTTP Digest on
 * the given transport and resolves to its typed result. Failures are ScsErrors: SCS_TLS_* from
 * connecting, SCS_AMT_* from HTTP, SCS_WSMAN_FAULT for SOAP faults, AmtError
 * (SCS_WSMAN_RETURN_VALUE) for a non-zero PT_STATUS, SCS_WSMAN_MALFORMED_REPLY for replies that
 * do not fit. Every call has its own deadline (callTimeoutMs, SCS_AMT_TIMEOUT) and honours the
 * caller's AbortSignal. Request and reply bodies are never logged: they carry passwords and PSKs.
 */

export const SOAP_CONTENT_TYPE = 'application/soap+xml;charset=UTF-8';
const WSMAN_PATH = '/wsman';

export interface AmtClientOptions {
  readonly transport: HttpTransport;
  /** `admin` in setup mode (§4). */
  readonly username: string;
  /** In setup mode, the MEBx password set with the PID/PPS (§6). */
  readonly password: Secret<string>;
  /** Deadline of one call() as a whole (enumeration included). */
  readonly callTimeoutMs: number;
  readonly maxReplyBytes?: number;
  readonly log?: Logger;
}

export interface CallOptions {
  readonly signal?: AbortSignal;
}

/** One call's bound, handed to each of its requests. */
interface CallBound {
  readonly signal: AbortSignal | undefined;
  /** `performance.now()` by which the whole call must be done. */
  readonly deadline: number;
  readonly timeoutError: () => Error;
}

export interface AmtClient {
  call<T>(operation: Operation<T>, options?: CallOptions): Promise<T>;
  /** Closes the connection (the transport reconnects if called again). */
  close(): void;
  /** Counters for logs and tests. */
  stats(): AmtClientStats;
}

export interface AmtClientStats {
  /** WS-Man request documents sent (Digest retries not counted twice). */
  readonly exchanges: number;
  /** 401 challenges answered: one per connection on a healthy session. */
  readonly challenges: number;
  /** TLS connections opened. */
  readonly connections: number;
  /** HTTP bytes written and read (the transport's counters). */
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

export function createAmtClient(options: AmtClientOptions): AmtClient {
  const { transport, log } = options;
  const maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
  const digest = createDigestClient({ transport, username: options.username, password: options.password });
  /** Debug lines are built only when they are written (a call's log object is otherwise garbage). */
  const debug = log?.isLevelEnabled('debug') === true;
  const session: Session = { digest, callTimeoutMs: options.callTimeoutMs, maxReplyBytes, exchanges: 0 };

  return {
    stats() {
      return {
        exchanges: session.exchanges,
        challenges: digest.challenges,
        connections: transport.connections,
        bytesSent: transport.bytesSent,
        bytesReceived: transport.bytesReceived,
      };
    },
    async call<T>(operation: Operation<T>, callOptions: CallOptions = {}): Promise<T> {
      // The call's deadline is enforced by the transport's own per-request timer and signal
      // (each request gets what is left of it), not by a second controller, timer and abort
      // listener per call: on the provisioning path that pair cost more than Digest.
      const timeoutMs = options.callTimeoutMs;
      const bound: CallBound = {
        signal: callOptions.signal,
        deadline: performance.now() + timeoutMs,
        timeoutError: timeoutErrorOf(operation.name, timeoutMs),
      };
      if (bound.signal?.aborted) throw abortError(bound.signal);
      const started = debug ? performance.now() : 0;
      try {
        const result = await operation.run((request) => exchange(session, request, bound));
        if (debug)
          log?.debug({ operation: operation.name, ms: Math.round(performance.now() - started) }, 'AMT call done');
        return result;
      } catch (error) {
        if (debug) {
          log?.debug(
            { operation: operation.name, code: error instanceof ScsError ? error.code : undefined },
            'AMT call failed',
          );
        }
        throw error;
      }
    },
    close() {
      transport.close();
    },
  };
}

/**
 * What one client's requests share. exchange() and interpret() live at module level and take
 * it: written inside createAmtClient, tsx (esbuild keepNames) would name both with a
 * defineProperty for every client made, i.e. every connection.
 */
interface Session {
  readonly digest: DigestClient;
  readonly callTimeoutMs: number;
  readonly maxReplyBytes: number;
  exchanges: number;
}

async function exchange(session: Session, request: WsmanRequest, bound: CallBound): Promise<WsmanReply> {
  const messageId = `uuid:${randomUUID()}`;
  const action = request.kind === 'call' ? request.action : 'Identify';
  const body = Buffer.from(buildEnvelope(request, messageId), 'utf8');
  session.exchanges++;
  const idempotent = request.kind === 'identify' || request.idempotent;
  // Two plain literals rather than a conditional spread: V8 clones a spread object on a slow
  // path, and this runs for every request of every device.
  const postOptions: PostOptions =
    bound.signal === undefined
      ? { timeoutMs: session.callTimeoutMs, deadline: bound.deadline, timeoutError: bound.timeoutError, idempotent }
      : {
          signal: bound.signal,
          timeoutMs: session.callTimeoutMs,
          deadline: bound.deadline,
          timeoutError: bound.timeoutError,
          idempotent,
        };
  const response = await session.digest.post(WSMAN_PATH, SOAP_CONTENT_TYPE, body, postOptions);
  return interpret(response, request, action, messageId, session.maxReplyBytes);
}

function interpret(
  response: HttpResponse,
  request: WsmanRequest,
  action: string,
  messageId: string,
  maxReplyBytes: number,
): WsmanReply {
  const { status } = response;
  // AMT answers faults with 400/500 and a SOAP body (§5); anything else non-200 is an HTTP problem.
  if (status !== 200) {
    const looksXml = response.body.length > 0 && /xml/i.test(header(response, 'content-type') ?? 'xml');
    if (!((status === 400 || status === 500) && looksXml)) {
      throw new ScsError(
        'SCS_AMT_HTTP',
        `the device answered ${action} with HTTP ${status} ${response.reason}`.trim(),
        {
          details: { status, action },
        },
      );
    }
  }
  const reply = parseWsman(response.body, maxReplyBytes);
  const fault = readFault(reply);
  if (fault) throw faultError(fault, { action, httpStatus: status });
  if (status !== 200) {
    throw new ScsError('SCS_AMT_HTTP', `the device answered ${action} with HTTP ${status} and no fault`, {
      details: { status, action },
    });
  }
  if (reply.relatesTo !== undefined && reply.relatesTo !== messageId) {
    throw malformedReply(`RelatesTo ${reply.relatesTo} does not answer MessageID ${messageId}`, {
      relatesTo: reply.relatesTo,
      messageId,
    });
  }
  if (request.kind === 'call' && reply.action !== undefined) {
    const expected = `${request.action}Response`;
    if (reply.action !== expected && reply.action !== FAULT_ACTION) {
      throw malformedReply(`reply Action ${reply.action}, expected ${expected}`, { action: reply.action, expected });
    }
  }
  return reply;
}

/**
 * The error a call's deadline fails with, made only if it fires. Returned from here rather than
 * written inline in the call's options: tsx (esbuild keepNames) names every function written as
 * a property value with a defineProperty each time it is created.
 */
function timeoutErrorOf(operation: string, timeoutMs: number): () => Error {
  return () =>
    new ScsError('SCS_AMT_TIMEOUT', `${operation} did not complete within ${timeoutMs} ms`, {
      details: { operation, timeoutMs },
    });
}
