import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { formatChallenge, verifyDigest, type NonceStore } from './digest.ts';

/**
 * The HTTP side of an AMT device (protocol.md §4, §5): `POST /wsman` only, bounded bodies (413),
 * Digest authentication with AMT's 401 (`Connection: close`), replies in chunked encoding with
 * AMT's headers. What a request means is the host's business (the device).
 */
export const DEFAULT_MAX_BODY_BYTES = 256 * 1024;

export type HostReply =
  | { kind: 'reply'; status: number; xml: string; close: boolean }
  /** Not authenticated and not allowed without: answer 401 with a fresh nonce. */
  | { kind: 'unauthorized' }
  /** Destroy the connection without an answer (a fault hook, a reboot). */
  | { kind: 'drop' };

export interface WsmanHttpHost {
  realm(): string;
  lookupHa1(username: string): Buffer | undefined;
  readonly nonces: NonceStore;
  /** Delay before every reply (the latency fault). */
  replyDelayMs(): number;
  serverHeader(): string;
  readonly maxBodyBytes: number;
  /** `user` is undefined when the request carried no valid credentials. */
  handle(body: string, user: string | undefined, socket: Socket): Promise<HostReply>;
  /** A failure the handler could not answer with a fault. */
  onError(error: unknown): void;
}

const UNAUTHORIZED_HTML =
  '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" >' +
  '<html lang="en"><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">' +
  '<title>Intel&reg; Active Management Technology</title></head><body>' +
  '<h1>Intel<sup>&reg;</sup> Active Management Technology</h1>' +
  '<h2 class=warn>Log on failed. Incorrect user name or password, or user account temporarily locked.</h2>' +
  '</body></html>';

function plain(res: ServerResponse, host: WsmanHttpHost, status: number, text: string, close: boolean): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html');
  res.setHeader('Server', host.serverHeader());
  res.setHeader('Content-Length', Buffer.byteLength(text));
  if (close) res.setHeader('Connection', 'close');
  res.end(text);
}

/** Reads the body up to `max` bytes; undefined when it is larger (the rest is left unread). */
function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > max) {
        done = true;
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

export function createWsmanRequestHandler(host: WsmanHttpHost): (req: IncomingMessage, res: ServerResponse) => void {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const pause = async (): Promise<void> => {
      const ms = host.replyDelayMs();
      if (ms > 0) await delay(ms);
    };
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/wsman') {
      await pause();
      plain(res, host, 404, 'Not Found', false);
      return;
    }
    if (req.method !== 'POST') {
      await pause();
      res.setHeader('Allow', 'POST');
      plain(res, host, 405, 'Method Not Allowed', false);
      return;
    }
    const declared = Number(req.headers['content-length'] ?? '0');
    const body = declared > host.maxBodyBytes ? undefined : await readBody(req, host.maxBodyBytes);
    if (body === undefined) {
      await pause();
      plain(res, host, 413, 'Request Entity Too Large', true);
      return;
    }
    const outcome = verifyDigest(req.headers.authorization, {
      realm: host.realm(),
      method: req.method,
      url: req.url ?? '',
      lookupHa1: (u) => host.lookupHa1(u),
      nonces: host.nonces,
    });
    const reply = await host.handle(body, outcome.ok ? outcome.username : undefined, req.socket);
    if (reply.kind === 'drop') {
      req.socket.destroy();
      return;
    }
    await pause();
    if (reply.kind === 'unauthorized') {
      const stale = !outcome.ok && outcome.stale;
      res.setHeader('WWW-Authenticate', formatChallenge(host.realm(), host.nonces.issue(), stale));
      // AMT ends the connection after a 401; the client retries on a new one with the nonce.
      plain(res, host, 401, UNAUTHORIZED_HTML, true);
      return;
    }
    res.statusCode = reply.status;
    res.setHeader('Server', host.serverHeader());
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Content-Type', 'application/soap+xml; charset=UTF-8');
    if (reply.close) res.setHeader('Connection', 'close');
    // No Content-Length: node answers an HTTP/1.1 request in chunked encoding, as AMT does.
    res.write(reply.xml);
    res.end();
  };
  return (req, res) => {
    handle(req, res).catch((e: unknown) => {
      host.onError(e);
      if (!res.headersSent) plain(res, host, 500, 'Internal Server Error', true);
      else res.destroy();
    });
  };
}
