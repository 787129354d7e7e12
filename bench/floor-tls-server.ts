/**
 * Child process of bench/provision.ts: the device side of the floor. It answers every HTTP
 * request with one canned reply of a given size, so the floor can carry the server's bytes
 * (its measured mean request and reply per round trip) without any logic on either side.
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
import { PSK_CIPHERS } from '../simulator/device/tls.ts';

export interface FloorTlsServerConfig {
  readonly keyPem?: string;
  readonly certPem?: string;
  readonly minVersion: tls.SecureVersion;
  readonly maxVersion: tls.SecureVersion;
  /** Size of the canned reply, status line and headers included. */
  readonly replyBytes: number;
  /** PID → PPS of the devices whose TLS-PSK handshakes this process answers. */
  readonly psks: readonly (readonly [string, string])[];
}

export interface FloorTlsServerPorts {
  readonly pskPort: number;
  /** 0 without keyPem/certPem. */
  readonly certPort: number;
}

/** A 200 reply of exactly `bytes` bytes (or its bare minimum): a SOAP envelope padded with spaces. */
export function cannedReply(bytes: number): Buffer {
  const open = '<?xml version="1.0" encoding="UTF-8"?><a:Envelope><a:Body>';
  const close = '</a:Body></a:Envelope>';
  const head = (length: number): string =>
    `HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: ${length}\r\n\r\n`;
  let length = open.length + close.length;
  // The head holds the body's length, so its own length depends on the digits: settle it.
  for (let i = 0; i < 3; i++) length = Math.max(open.length + close.length, bytes - head(length).length);
  return Buffer.from(head(length) + open + ' '.repeat(length - open.length - close.length) + close, 'latin1');
}

/** Answers each complete request (headers + Content-Length body) on the socket with `reply`. */
function serve(socket: tls.TLSSocket, reply: Buffer): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    for (;;) {
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = /content-length:\s*(\d+)/i.exec(pending.toString('latin1', 0, end))?.[1];
      const total = end + 4 + Number(length ?? 0);
      if (pending.length < total) return;
      pending = pending.subarray(total);
      socket.write(reply);
    }
  });
  socket.on('error', () => undefined);
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
    const reply = cannedReply(config.replyBytes);
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
      (socket) => serve(socket, reply),
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
            (socket) => serve(socket, reply),
          );
    void Promise.all([listen(psk), cert === undefined ? 0 : listen(cert)]).then(([pskPort, certPort]) => {
      const ports: FloorTlsServerPorts = { pskPort, certPort };
      process.send?.(ports);
    });
    process.once('disconnect', () => process.exit(0));
  });
}
