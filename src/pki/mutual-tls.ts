import type { KeyObject } from 'node:crypto';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { hostHeader } from '../amt/connect.ts';
import { createSocketTransport, type HttpTransport } from '../amt/http/transport.ts';
import { handshake } from '../amt/tls-psk.ts';
import type { TlsVersion } from '../config.ts';
import { ScsError } from '../errors.ts';

/**
 * The TLS session of certificate-based setup (docs/pki.md): the SCS presents the provisioning
 * chain as its client certificate (leaf first, root included: AMT matches the root's hash), the
 * device presents a self-signed certificate no CA can vouch for. That certificate is pinned by
 * SHA-256 from the first session on, so the sessions after AdminSetup talk to the same device.
 */
export interface MutualTlsOptions {
  readonly host: string;
  readonly port: number;
  /** PEM, leaf first, root last. */
  readonly chainPem: string;
  readonly key: KeyObject;
  readonly minVersion: TlsVersion;
  readonly maxVersion: TlsVersion;
  readonly connectTimeoutMs: number;
  /** Colon-less lowercase hex SHA-256 the device certificate must have; undefined: learn it. */
  readonly pin: { sha256: string | undefined };
}

function fingerprint(socket: TLSSocket): string | undefined {
  return socket.getPeerX509Certificate()?.fingerprint256.replace(/:/g, '').toLowerCase();
}

export function connectMutualTls(o: MutualTlsOptions, signal: AbortSignal): Promise<TLSSocket> {
  const legacy = o.minVersion !== 'TLSv1.2';
  const options: ConnectionOptions = {
    host: o.host,
    port: o.port,
    key: o.key.export({ format: 'pem', type: 'pkcs8' }),
    cert: o.chainPem,
    // The setup certificate is self-signed by the device: trust comes from the pin, below.
    rejectUnauthorized: false,
    minVersion: o.minVersion,
    maxVersion: o.maxVersion,
    ...(legacy ? { ciphers: 'DEFAULT:@SECLEVEL=0' } : {}),
  };
  return handshake(options, { host: o.host, port: o.port, kind: 'TLS', timeoutMs: o.connectTimeoutMs, signal }).then(
    (socket) => {
      const seen = fingerprint(socket);
      if (o.pin.sha256 === undefined) o.pin.sha256 = seen;
      else if (seen !== o.pin.sha256) {
        socket.destroy();
        throw new ScsError(
          'SCS_TLS_CERT_REJECTED',
          `TLS to ${o.host}:${o.port}: the device certificate changed during setup (expected SHA-256 ${o.pin.sha256})`,
          { details: { host: o.host, port: o.port } },
        );
      }
      return socket;
    },
  );
}

export function createMutualTlsTransport(o: MutualTlsOptions, requestTimeoutMs?: number): HttpTransport {
  return createSocketTransport({
    host: hostHeader(o.host, o.port),
    ...(requestTimeoutMs === undefined ? {} : { timeoutMs: requestTimeoutMs }),
    connect: (signal) => connectMutualTls(o, signal),
  });
}
