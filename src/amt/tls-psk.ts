import tls, { type ConnectionOptions, type SecureContext, type TLSSocket } from 'node:tls';
import { DEFAULT_PSK_CIPHERS, type TlsVersion } from '../config.ts';
import { ScsError, type ErrorCode } from '../errors.ts';
import type { Pid } from '../psk/pid.ts';
import type { Pps } from '../psk/pps.ts';
import type { Secret } from '../secret.ts';
import { abortError } from './abort.ts';

/**
 * The one place in amt/ that opens sockets. The SCS is the TLS client and the device the
 * server on 16993 (protocol.md §3). A PSK session proves both sides hold the PID/PPS
 * (RFC 4279); after CommitChanges the device serves a certificate the SCS CA issued.
 */

export interface PskConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly pid: Pid;
  readonly pps: Secret<Pps>;
  /** Default TLSv1: PSK-era firmware (AMT 2.x-10.x) predates TLS 1.2 (§3). */
  readonly minVersion?: TlsVersion;
  /** Default TLSv1.2; PSK is never offered at TLS 1.3 (its PSK semantics differ). */
  readonly maxVersion?: TlsVersion;
  /** OpenSSL cipher list; default DEFAULT_PSK_CIPHERS (PSK-AES128-CBC-SHA first). */
  readonly ciphers?: string;
  /** Bound on TCP connect + handshake. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

export interface TlsConnectOptions {
  readonly host: string;
  readonly port: number;
  /** PEM or DER of the CA(s) to trust: the SCS CA that issued the device certificate. */
  readonly ca: string | Buffer | readonly (string | Buffer)[];
  /**
   * A context built once from the same `ca` (tlsSecureContext): building one parses the CA and
   * sets up a certificate store, which a server verifying thousands of devices should not repeat
   * per connection. When given it is used as is (its ciphers and versions apply).
   */
  readonly secureContext?: SecureContext;
  /** Name the certificate must carry (and SNI when it is a DNS name); default `host`. */
  readonly servername?: string;
  readonly minVersion?: TlsVersion;
  readonly maxVersion?: TlsVersion;
  /** Default: OpenSSL's DEFAULT list, at security level 0 when TLS 1.0/1.1 are allowed (see connectTls). */
  readonly ciphers?: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** PSK client contexts by versions and cipher list (a server uses one or two settings). */
const pskContexts = new Map<string, SecureContext>();
const MAX_PSK_CONTEXTS = 16;

/**
 * The client context for TLS-PSK with these versions and ciphers, built once. Without it every
 * tls.connect builds a fresh SSL_CTX (and loads the default root store into it): about 0.5 ms
 * of CPU per handshake, a tenth of the network side of provisioning a device. Sharing is safe:
 * the PSK comes from each socket's own pskCallback, and an OpenSSL client context keeps no
 * session cache, so no session of one PID is ever offered on another connection.
 */
export function pskSecureContext(minVersion: TlsVersion, maxVersion: TlsVersion, ciphers: string): SecureContext {
  const key = `${minVersion}|${maxVersion}|${ciphers}`;
  let context = pskContexts.get(key);
  if (context === undefined) {
    if (pskContexts.size >= MAX_PSK_CONTEXTS) pskContexts.clear();
    context = tls.createSecureContext({ minVersion, maxVersion, ciphers });
    pskContexts.set(key, context);
  }
  return context;
}

/** TLS-PSK handshake with a device: identity = the 8 PID bytes, key = the 32 PPS ASCII bytes (§2). */
export function connectPsk(options: PskConnectOptions): Promise<TLSSocket> {
  const { host, port, pid, pps } = options;
  const minVersion = options.minVersion ?? 'TLSv1';
  const maxVersion = options.maxVersion ?? 'TLSv1.2';
  const ciphers = options.ciphers ?? DEFAULT_PSK_CIPHERS;
  return handshake(
    {
      host,
      port,
      minVersion,
      maxVersion,
      ciphers,
      secureContext: pskSecureContext(minVersion, maxVersion, ciphers),
      // The key is built only inside the handshake and never kept on an object that could be logged.
      pskCallback: () => ({ identity: pid, psk: Buffer.from(pps.reveal(), 'ascii') }),
      // A PSK suite has no certificate to check; Node would otherwise fail with ERR_TLS_CERT_ALTNAME_INVALID.
      checkServerIdentity: () => undefined,
    },
    { host, port, kind: 'TLS-PSK', pid, timeoutMs: options.timeoutMs, signal: options.signal },
  );
}

/** Certificate TLS (post-provisioning verification, §6 step 9): the device must present a certificate from `ca`. */
export function connectTls(options: TlsConnectOptions): Promise<TLSSocket> {
  const { host, port } = options;
  const name = options.servername ?? host;
  const tlsOptions: ConnectionOptions = {
    host,
    port,
    ca: options.ca as ConnectionOptions['ca'],
    rejectUnauthorized: true,
    minVersion: options.minVersion ?? 'TLSv1',
    maxVersion: options.maxVersion ?? 'TLSv1.2',
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert),
  };
  // SNI carries DNS names only (RFC 6066 §3).
  if (options.servername !== undefined && !isIp(options.servername)) tlsOptions.servername = options.servername;
  // TLS 1.0/1.1 sign the handshake with MD5+SHA-1, which OpenSSL 3 refuses at its default
  // security level (ERR_SSL_LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED). AMT 6-10 firmware serves
  // nothing newer, so level 0 is needed there; the chain is still pinned to the SCS CA.
  const legacy = (options.minVersion ?? 'TLSv1') !== 'TLSv1.2';
  const ciphers = options.ciphers ?? (legacy ? 'DEFAULT:@SECLEVEL=0' : undefined);
  if (ciphers !== undefined) tlsOptions.ciphers = ciphers;
  if (options.secureContext !== undefined) tlsOptions.secureContext = options.secureContext;
  return handshake(tlsOptions, { host, port, kind: 'TLS', timeoutMs: options.timeoutMs, signal: options.signal });
}

export interface HandshakeContext {
  readonly host: string;
  readonly port: number;
  readonly kind: 'TLS-PSK' | 'TLS';
  readonly pid?: Pid;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
}

/** Connects and settles once: the socket after secureConnect, or a typed error (timeout, abort, TLS failure). */
export function handshake(tlsOptions: ConnectionOptions, ctx: HandshakeContext): Promise<TLSSocket> {
  const { signal } = ctx;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise<TLSSocket>((resolve, reject) => {
    const socket = tls.connect(tlsOptions);
    let done = false;
    const settle = (error?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      if (error === undefined) return resolve(socket);
      socket.destroy();
      reject(error);
    };
    const onError = (error: Error): void => settle(classifyTlsError(error, ctx));
    const onAbort = (): void => settle(abortError(signal));
    const timer = setTimeout(
      () =>
        settle(
          new ScsError(
            'SCS_TLS_TIMEOUT',
            `${ctx.kind} to ${ctx.host}:${ctx.port}: no completed handshake within ${ctx.timeoutMs} ms`,
            { details: { host: ctx.host, port: ctx.port, timeoutMs: ctx.timeoutMs } },
          ),
        ),
      ctx.timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('secureConnect', () => settle());
    socket.on('error', onError);
  });
}

function isIp(name: string): boolean {
  return /^[\d.]+$/.test(name) || name.includes(':');
}

/**
 * What Node reports for each failure, measured against `openssl s_server -psk` (TLS 1.0-1.3) and
 * Node's own `tls.createServer({ pskCallback })` (see tls-psk.test.ts and docs/amt-client.md).
 */
const CODE_BY_OPENSSL: Readonly<Record<string, ErrorCode>> = {
  // alert 115: the server's PSK callback found no key for our identity
  ERR_SSL_TLSV1_ALERT_UNKNOWN_PSK_IDENTITY: 'SCS_TLS_UNKNOWN_IDENTITY',
  // alert 20 / 21 / 51: the keys differ, so the Finished message does not decrypt or verify
  ERR_SSL_SSLV3_ALERT_BAD_RECORD_MAC: 'SCS_TLS_BAD_KEY',
  ERR_SSL_TLSV1_ALERT_DECRYPTION_FAILED: 'SCS_TLS_BAD_KEY',
  ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR: 'SCS_TLS_BAD_KEY',
  ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC: 'SCS_TLS_BAD_KEY',
  ERR_SSL_BAD_RECORD_MAC: 'SCS_TLS_BAD_KEY',
  ERR_SSL_DIGEST_CHECK_FAILED: 'SCS_TLS_BAD_KEY',
  // alert 40 / 70 / 71 and local refusals: nothing in common to negotiate
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: 'SCS_TLS_NO_COMMON_SUITE',
  ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: 'SCS_TLS_NO_COMMON_SUITE',
  ERR_SSL_TLSV1_ALERT_INSUFFICIENT_SECURITY: 'SCS_TLS_NO_COMMON_SUITE',
  ERR_SSL_UNSUPPORTED_PROTOCOL: 'SCS_TLS_NO_COMMON_SUITE',
  ERR_SSL_NO_PROTOCOLS_AVAILABLE: 'SCS_TLS_NO_COMMON_SUITE',
  ERR_SSL_NO_CIPHERS_AVAILABLE: 'SCS_TLS_NO_COMMON_SUITE',
  ERR_SSL_NO_SHARED_CIPHER: 'SCS_TLS_NO_COMMON_SUITE',
  ERR_SSL_WRONG_CIPHER_RETURNED: 'SCS_TLS_NO_COMMON_SUITE',
  ERR_SSL_LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED: 'SCS_TLS_NO_COMMON_SUITE',
  ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM: 'SCS_TLS_NO_COMMON_SUITE',
  ECONNREFUSED: 'SCS_TLS_REFUSED',
  ETIMEDOUT: 'SCS_TLS_TIMEOUT',
};

/** X.509 verification failures Node reports by OpenSSL verify code, plus its own name check. */
const CERT_CODES = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'IP_ADDRESS_MISMATCH',
]);

const WHAT: Readonly<Partial<Record<ErrorCode, string>>> = {
  SCS_TLS_UNKNOWN_IDENTITY: 'the device does not know this PID',
  SCS_TLS_BAD_KEY: 'the handshake failed on the key (the device holds another PPS for this PID)',
  SCS_TLS_NO_COMMON_SUITE: 'no TLS version or cipher suite in common',
  SCS_TLS_REFUSED: 'connection refused',
  SCS_TLS_TIMEOUT: 'timed out',
  SCS_TLS_CERT_REJECTED: 'the device certificate was rejected',
  SCS_TLS_FAILED: 'connection failed',
};

/** Maps a Node/OpenSSL error to its SCS_TLS_* code, keeping the raw reason in details and cause. */
export function classifyTlsError(
  error: Error & { code?: string; reason?: string },
  ctx: { host: string; port: number; kind?: string; pid?: Pid },
): ScsError {
  const opensslCode = typeof error.code === 'string' ? error.code : '';
  const code: ErrorCode =
    CODE_BY_OPENSSL[opensslCode] ?? (CERT_CODES.has(opensslCode) ? 'SCS_TLS_CERT_REJECTED' : 'SCS_TLS_FAILED');
  const alert = /SSL alert number (\d+)/.exec(error.message)?.[1];
  const reason = typeof error.reason === 'string' ? error.reason : error.message.split('\n')[0];
  const who = ctx.pid === undefined ? '' : ` (PID ${ctx.pid})`;
  return new ScsError(
    code,
    `${ctx.kind ?? 'TLS'} to ${ctx.host}:${ctx.port}${who}: ${WHAT[code] ?? 'failed'} [${opensslCode || 'no code'}: ${reason ?? ''}]`,
    {
      cause: error,
      details: {
        host: ctx.host,
        port: ctx.port,
        opensslCode: opensslCode || null,
        reason: reason ?? null,
        alert: alert === undefined ? null : Number(alert),
      },
    },
  );
}

/** A reusable context for connectTls: the same CA, versions and cipher choice connectTls makes. */
export function tlsSecureContext(options: {
  readonly ca: string | Buffer | readonly (string | Buffer)[];
  readonly minVersion?: TlsVersion;
  readonly maxVersion?: TlsVersion;
  readonly ciphers?: string;
}): SecureContext {
  const legacy = (options.minVersion ?? 'TLSv1') !== 'TLSv1.2';
  const ciphers = options.ciphers ?? (legacy ? 'DEFAULT:@SECLEVEL=0' : undefined);
  return tls.createSecureContext({
    ca: options.ca as ConnectionOptions['ca'],
    minVersion: options.minVersion ?? 'TLSv1',
    maxVersion: options.maxVersion ?? 'TLSv1.2',
    ...(ciphers === undefined ? {} : { ciphers }),
  });
}
