import { ScsError } from '../../errors.ts';
import type { Secret } from '../../secret.ts';
import { DigestSession, parseDigestChallenge } from './digest.ts';
import { header, type HttpResponse } from './response.ts';
import type { HttpRequest, HttpTransport, RequestOptions } from './transport.ts';

/**
 * HTTP Digest on top of a transport (protocol.md §4). The first request goes out without
 * credentials and earns a 401 with a challenge; later requests reuse that nonce with a rising
 * nc, so a kept-alive session costs one 401 in total. A 401 that answers credentials computed
 * from the challenge just received means the password is wrong (SCS_AMT_AUTH_FAILED), unless it
 * says stale=true, which earns one more try with the new nonce (RFC 7616 §3.3).
 */

export interface DigestClientOptions {
  readonly transport: HttpTransport;
  readonly username: string;
  readonly password: Secret<string>;
}

export interface PostOptions extends RequestOptions {
  readonly idempotent?: boolean;
}

export interface DigestClient {
  post(path: string, contentType: string, body: Buffer, options?: PostOptions): Promise<HttpResponse>;
  /** Requests answered 401 so far (one per nonce on a healthy session). */
  readonly challenges: number;
}

export function createDigestClient(options: DigestClientOptions): DigestClient {
  const { transport, username, password } = options;
  let session: DigestSession | undefined;
  let challenges = 0;

  return {
    get challenges() {
      return challenges;
    },
    async post(path, contentType, body, opts = {}) {
      /** Credentials in this attempt come from a challenge received during this same post. */
      let fresh = false;
      let staleRetried = false;
      for (;;) {
        const used = session;
        const headers: Record<string, string> =
          used === undefined
            ? { 'Content-Type': contentType }
            : { 'Content-Type': contentType, Authorization: used.authorize(username, password, 'POST', path) };
        // idempotent absent and false mean the same to the transport (never re-sent).
        const request: HttpRequest = { method: 'POST', path, headers, body, idempotent: opts.idempotent === true };
        const response = await transport.request(request, opts);
        if (response.status !== 401) return response;
        challenges++;
        const www = response.headers['www-authenticate'];
        if (www === undefined) {
          throw new ScsError('SCS_AMT_HTTP', 'the device answered 401 without a WWW-Authenticate challenge', {
            details: { status: 401 },
          });
        }
        const challenge = parseDigestChallenge(www);
        if (fresh && !(challenge.stale && !staleRetried)) {
          throw new ScsError(
            'SCS_AMT_AUTH_FAILED',
            `the device refused the Digest credentials of user "${username}" (realm ${challenge.realm})`,
            { details: { username, realm: challenge.realm, connection: header(response, 'connection') ?? null } },
          );
        }
        if (fresh) staleRetried = true;
        session = new DigestSession(challenge);
        fresh = true;
      }
    },
  };
}
