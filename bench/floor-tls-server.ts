/**
 * Child process of bench/provision.ts: the device side of the floor. It answers every HTTP
 * request through a simulated device's HTTP layer with one canned reply of a given size, so the
 * floor carries the server's bytes (its measured mean request and reply per round trip), framed
 * as a device frames them, without any logic on either side.
 * It runs in its own process so, like the fleet, its CPU is not the floor's. Two listeners on
 * 127.0.0.1, configured as a simulated device's TLS contexts are (simulator/device/tls.ts: the
 * same versions, cipher lists and no session tickets):
 *
 * - TLS-PSK (identity PID, key PPS), as an unprovisioned device in setup mode;
 * - certificate TLS with an RSA-2048 device certificate issued by the server's own issuer, as
 *   a provisioned device at verification (§6 step 9): the simulated devices of the floor run
 *   are never provisioned, so they cannot serve one.
 *
 * Protocol: the parent sends one FloorTlsServerConfig; this process answers { pskPort,
 * certPort } when both listen, and exits when the parent disconnects.
 */
import { constants } from 'node:crypto';
import tls from 'node:tls';
import http from 'node:http';
import { PSK_CIPHERS } from '../simulator/device/tls.ts';
import { NonceStore } from '../simulator/http/digest.ts';
import { createWsmanRequestHandler, type WsmanHttpHost } from '../simulator/http/server.ts';

export interface FloorTlsServerConfig {
  readonly keyPem?: string;
  readonly certPem?: string;
  readonly minVersion: tls.SecureVersion;
  readonly maxVersion: tls.SecureVersion;
  /** Size of the canned reply: head, chunk framing and body. */
  readonly replyBytes: number;
  /** PID → PPS of the devices whose TLS-PSK handshakes this process answers. */
  readonly psks: readonly (readonly [string, string])[];
}

export interface FloorTlsServerPorts {
  readonly pskPort: number;
  /** 0 without keyPem/certPem. */
  readonly certPort: number;
}

const OPEN = '<?xml version="1.0" encoding="UTF-8"?><a:Envelope><a:Body>';
const CLOSE = '</a:Body></a:Envelope>';

/**
 * The device's HTTP side, as a simulated device's (simulator/http/server.ts: AMT's headers,
 * chunked replies, keep-alive) answering every request with a canned envelope, padded so that
 * a whole reply (head, chunk framing, body) is about `replyBytes`. The head's size is read off
 * the replies already written (the socket's plaintext bytes minus the body), so the first few
 * replies may be a few bytes off; the floor reports the bytes it read.
 */
function cannedDevice(replyBytes: number): http.Server {
  let overhead = 260;
  const host: WsmanHttpHost = {
    realm: () => 'Digest:00000000000000000000000000000000',
    lookupHa1: () => undefined,
    nonces: new NonceStore(Date.now),
    replyDelayMs: () => 0,
    serverHeader: () => 'Intel(R) Active Management Technology 11.8.50',
    maxBodyBytes: 256 * 1024,
    handle: (_body, _user, socket) => {
      const xml = OPEN + ' '.repeat(Math.max(0, replyBytes - overhead - OPEN.length - CLOSE.length)) + CLOSE;
      const before = socket.bytesWritten;
      setImmediate(() => (overhead = Math.max(0, socket.bytesWritten - before - xml.length)));
      return Promise.resolve({ kind: 'reply', status: 200, xml, close: false });
    },
    onError: () => undefined,
  };
  return http.createServer({ keepAliveTimeout: 60_000 }, createWsmanRequestHandler(host));
}

function listen(server: tls.Server): Promise<number> {
  server.on('tlsClientError', () => undefined);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    }),
  );
}

if (process.send !== undefined) {
  process.once('message', (config: FloorTlsServerConfig) => {
    const device = cannedDevice(config.replyBytes);
    const serve = (socket: tls.TLSSocket): void => {
      socket.on('error', () => undefined);
      device.emit('connection', socket);
    };
    const { minVersion, maxVersion } = config;
    const secureOptions = constants.SSL_OP_NO_TICKET;
    const keys = new Map(config.psks.map(([pid, pps]) => [pid, Buffer.from(pps, 'ascii')]));
    const psk = tls.createServer(
      {
        ciphers: PSK_CIPHERS.join(':'),
        minVersion,
        maxVersion,
        secureOptions,
        pskCallback: (_socket, identity) => keys.get(identity) ?? null,
      },
      serve,
    );
    const cert =
      config.keyPem === undefined || config.certPem === undefined
        ? undefined
        : tls.createServer(
            {
              key: config.keyPem,
              cert: config.certPem,
              minVersion,
              maxVersion,
              secureOptions,
              ...(minVersion !== 'TLSv1.2' ? { ciphers: 'DEFAULT:@SECLEVEL=0' } : {}),
            },
            serve,
          );
    void Promise.all([listen(psk), cert === undefined ? 0 : listen(cert)]).then(([pskPort, certPort]) => {
      const ports: FloorTlsServerPorts = { pskPort, certPort };
      process.send?.(ports);
    });
    process.once('disconnect', () => process.exit(0));
  });
}
