import type { SecureContext } from 'node:tls';
import type { TlsVersion } from '../config.ts';
import type { Pid } from '../psk/pid.ts';
import type { Pps } from '../psk/pps.ts';
import type { Secret } from '../secret.ts';
import { createSocketTransport, type HttpTransport } from './http/transport.ts';
import { connectPsk, connectTls } from './tls-psk.ts';

/**
 * Transports for the two phases of a device's life: TLS-PSK while In-provisioning (§3), and
 * certificate TLS once the SCS CA's certificate is installed (§6 step 9). Both connect lazily on
 * the first request and again whenever the device closes the connection.
 */

export interface PskTransportOptions {
  readonly host: string;
  readonly port: number;
  readonly pid: Pid;
  readonly pps: Secret<Pps>;
  readonly minVersion?: TlsVersion;
  readonly maxVersion?: TlsVersion;
  readonly ciphers?: string;
  /** TCP connect + handshake bound (config connectTimeoutMs). */
  readonly connectTimeoutMs: number;
  /** Default bound of one HTTP request (the client passes its own per call). */
  readonly requestTimeoutMs?: number;
}

export interface TlsTransportOptions {
  readonly host: string;
  readonly port: number;
  readonly ca: string | Buffer | readonly (string | Buffer)[];
  /** Built once with tlsSecureContext (tls-psk.ts) and shared by many transports. */
  readonly secureContext?: SecureContext;
  readonly servername?: string;
  readonly minVersion?: TlsVersion;
  readonly maxVersion?: TlsVersion;
  readonly ciphers?: string;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs?: number;
}

/** Host header value: an IPv6 literal goes in brackets (RFC 9112 §3.2, RFC 3986 §3.2.2). */
export function hostHeader(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function createPskTransport(o: PskTransportOptions): HttpTransport {
  return createSocketTransport({
    host: hostHeader(o.host, o.port),
    ...(o.requestTimeoutMs === undefined ? {} : { timeoutMs: o.requestTimeoutMs }),
    connect: (signal) =>
      connectPsk({
        host: o.host,
        port: o.port,
        pid: o.pid,
        pps: o.pps,
        timeoutMs: o.connectTimeoutMs,
        signal,
        ...(o.minVersion === undefined ? {} : { minVersion: o.minVersion }),
        ...(o.maxVersion === undefined ? {} : { maxVersion: o.maxVersion }),
        ...(o.ciphers === undefined ? {} : { ciphers: o.ciphers }),
      }),
  });
}

export function createTlsTransport(o: TlsTransportOptions): HttpTransport {
  return createSocketTransport({
    host: hostHeader(o.servername ?? o.host, o.port),
    ...(o.requestTimeoutMs === undefined ? {} : { timeoutMs: o.requestTimeoutMs }),
    connect: (signal) =>
      connectTls({
        host: o.host,
        port: o.port,
        ca: o.ca,
        timeoutMs: o.connectTimeoutMs,
        signal,
        ...(o.servername === undefined ? {} : { servername: o.servername }),
        ...(o.secureContext === undefined ? {} : { secureContext: o.secureContext }),
        ...(o.minVersion === undefined ? {} : { minVersion: o.minVersion }),
        ...(o.maxVersion === undefined ? {} : { maxVersion: o.maxVersion }),
        ...(o.ciphers === undefined ? {} : { ciphers: o.ciphers }),
      }),
  });
}
