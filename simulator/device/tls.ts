import { constants } from 'node:crypto';
import type { Socket } from 'node:net';
import tls, { type SecureContext, type SecureVersion } from 'node:tls';
import { ScsError } from '../../src/errors.ts';
import type { TlsMode } from './model.ts';

/**
 * The device's TLS on 16993 (protocol.md §3): TLS-PSK (identity = PID ASCII, key = the 32 PPS
 * ASCII bytes) while it holds a PSK and has no certificate, a certificate once TLS is
 * configured and committed. Versions 1.0 to 1.2, never 1.3 (it changes PSK semantics).
 */
export const PSK_CIPHERS = [
  'PSK-AES128-CBC-SHA',
  'PSK-AES256-CBC-SHA',
  'PSK-AES128-CBC-SHA256',
  'PSK-AES128-GCM-SHA256',
  'PSK-AES256-GCM-SHA384',
] as const;

export interface DeviceTlsOptions {
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  /** OpenSSL cipher list for TLS-PSK; default PSK_CIPHERS. */
  pskCiphers?: string;
}

export interface ResolvedTlsOptions {
  minVersion: SecureVersion;
  maxVersion: SecureVersion;
  pskCiphers: string;
}

const ORDER: readonly SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

export function resolveTlsOptions(o: DeviceTlsOptions = {}): ResolvedTlsOptions {
  const minVersion = o.minVersion ?? 'TLSv1';
  const maxVersion = o.maxVersion ?? 'TLSv1.2';
  if (!ORDER.includes(minVersion) || !ORDER.includes(maxVersion)) {
    throw new ScsError('SCS_SIM_CONFIG_INVALID', 'tls: versions are TLSv1, TLSv1.1 or TLSv1.2');
  }
  if (maxVersion === 'TLSv1.3' || minVersion === 'TLSv1.3') {
    throw new ScsError('SCS_SIM_CONFIG_INVALID', 'tls: AMT devices cap TLS at 1.2 (1.3 changes PSK semantics)');
  }
  if (ORDER.indexOf(minVersion) > ORDER.indexOf(maxVersion)) {
    throw new ScsError('SCS_SIM_CONFIG_INVALID', `tls: minVersion ${minVersion} is above maxVersion ${maxVersion}`);
  }
  return { minVersion, maxVersion, pskCiphers: o.pskCiphers ?? PSK_CIPHERS.join(':') };
}

export interface TlsHandshakeHooks {
  /** The handshake completed: the socket is ready for HTTP. */
  onSecure(socket: tls.TLSSocket): void;
  /**
   * PKI setup mode: the client's certificate chain (leaf first) as sent; false closes the
   * connection before any HTTP. (OpenSSL verifies chains against CA certificates; the device
   * holds root hashes, so it checks the chain itself once the handshake is done.)
   */
  checkClientChain?(ders: Buffer[]): boolean;
  /** The handshake failed; `identity` is the PSK identity the client offered, if it got that far. */
  onFailure(code: string, identity: string | undefined): void;
}

/** A handshake that does not finish in this long is abandoned (tls.Server's handshakeTimeout, shorter). */
const HANDSHAKE_TIMEOUT_MS = 30_000;

export class DeviceTls {
  #pskContext: SecureContext | undefined;
  #certContext: { handle: number; context: SecureContext } | undefined;
  #pkiContext: { certPem: string; context: SecureContext } | undefined;

  constructor(readonly options: ResolvedTlsOptions) {}

  #contextFor(mode: TlsMode): SecureContext {
    const { minVersion, maxVersion } = this.options;
    // No session tickets: a resumed session skips the PSK lookup, so a client holding a ticket
    // from the old PSK would get in after the PSK changed. (Session-ID resumption is already off:
    // node keeps no internal server cache for a bare TLSSocket.)
    const secureOptions = constants.SSL_OP_NO_TICKET;
    if (mode.kind === 'psk') {
      this.#pskContext ??= tls.createSecureContext({
        ciphers: this.options.pskCiphers,
        minVersion,
        maxVersion,
        secureOptions,
      });
      return this.#pskContext;
    }
    if (mode.kind === 'pki') {
      const identity = mode.identity;
      if (identity === undefined) throw new Error('PKI setup mode without a setup identity');
      if (this.#pkiContext?.certPem !== identity.certPem) {
        const context = tls.createSecureContext({
          key: identity.keyPem,
          cert: identity.certPem,
          ...(minVersion !== 'TLSv1.2' ? { ciphers: 'DEFAULT:@SECLEVEL=0' } : {}),
          minVersion,
          maxVersion,
          secureOptions,
        });
        this.#pkiContext = { certPem: identity.certPem, context };
      }
      return this.#pkiContext.context;
    }
    if (this.#certContext?.handle !== mode.cert.handle) {
      const context = tls.createSecureContext({
        key: mode.key.privateKey.export({ type: 'pkcs8', format: 'pem' }),
        cert: mode.cert.x509.toString(),
        // AMT 2.x-10.x speak TLS 1.0/1.1, whose MD5+SHA-1 handshake signatures OpenSSL 3
        // refuses at its default security level; a device configured for them must lower it.
        ...(minVersion !== 'TLSv1.2' ? { ciphers: 'DEFAULT:@SECLEVEL=0' } : {}),
        minVersion,
        maxVersion,
        secureOptions,
      });
      this.#certContext = { handle: mode.cert.handle, context };
    }
    return this.#certContext.context;
  }

  /** Starts the server side of a handshake on an accepted TCP socket, as the device is now. */
  accept(raw: Socket, mode: TlsMode, hooks: TlsHandshakeHooks): tls.TLSSocket {
    let identity: string | undefined;
    const psk = mode.kind === 'psk' ? mode.psk : undefined;
    const socket = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: this.#contextFor(mode),
      ...(mode.kind === 'pki' && mode.mutual ? { requestCert: true, rejectUnauthorized: false } : {}),
      ...(mode.kind === 'psk'
        ? {
            // Returning null makes OpenSSL fail the handshake with alert unknown_psk_identity (115);
            // a wrong key surfaces later as bad_record_mac (20) when the Finished does not decrypt.
            pskCallback: (_s: tls.TLSSocket, id: string) => {
              identity = id;
              return psk !== undefined && id === psk.pid ? Buffer.from(psk.pps.reveal(), 'ascii') : null;
            },
          }
        : {}),
    });
    let secure = false;
    const timer = setTimeout(() => {
      hooks.onFailure('HANDSHAKE_TIMEOUT', identity);
      socket.destroy();
    }, HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    socket.once('secure', () => {
      secure = true;
      clearTimeout(timer);
      if (mode.kind === 'pki' && mode.mutual) {
        const chain = peerChain(socket);
        if (chain.length === 0 || hooks.checkClientChain?.(chain) !== true) {
          hooks.onFailure(chain.length === 0 ? 'NO_CLIENT_CERTIFICATE' : 'CLIENT_CERTIFICATE_REFUSED', undefined);
          socket.destroy();
          return;
        }
      }
      hooks.onSecure(socket);
    });
    socket.on('error', (e: Error & { code?: string }) => {
      if (secure) return;
      clearTimeout(timer);
      hooks.onFailure(e.code ?? 'TLS_ERROR', identity);
      socket.destroy();
    });
    socket.once('close', () => clearTimeout(timer));
    return socket;
  }
}

/** The certificates the client sent, leaf first (node links them through issuerCertificate). */
function peerChain(socket: tls.TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert?.raw !== undefined && out.length < 10) {
    out.push(cert.raw);
    const next: tls.DetailedPeerCertificate | undefined = cert.issuerCertificate;
    if (next === undefined || next === cert || next.raw === undefined || next.raw.equals(cert.raw)) break;
    cert = next;
  }
  return out;
}
