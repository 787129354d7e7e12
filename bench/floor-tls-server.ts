/**
 * Child process of bench/provision.ts: the certificate-TLS side of the floor. After CommitChanges
 * the server verifies each device over TLS with the certificate the SCS CA issued (§6 step 9),
 * which costs the client more than a TLS-PSK handshake (ECDHE, an RSA signature check, a chain
 * check, the peer certificate read back). The simulated devices of the floor run are never
 * provisioned, so they cannot serve that certificate; this process does, configured as a
 * simulated device's certificate context is (simulator/device/tls.ts: the same versions, cipher
 * list and no session tickets, an RSA-2048 key), and answers every HTTP request with a canned
 * reply. It runs in its own process so, like the fleet, its CPU is not the floor's.
 *
 * Protocol: the parent sends { keyPem, certPem, minVersion, maxVersion, replyBytes } once; this
 * process answers { port } when it listens on 127.0.0.1, and exits when the parent disconnects.
 */
import { constants } from 'node:crypto';
import tls from 'node:tls';

export interface FloorTlsServerConfig {
  readonly keyPem: string;
  readonly certPem: string;
  readonly minVersion: tls.SecureVersion;
  readonly maxVersion: tls.SecureVersion;
  /** Size of the canned reply body (the server's verification reply is about this big). */
  readonly replyBytes: number;
}

function cannedReply(bytes: number): Buffer {
  const open = '<?xml version="1.0" encoding="UTF-8"?><a:Envelope><a:Body>';
  const close = '</a:Body></a:Envelope>';
  const body = open + ' '.repeat(Math.max(0, bytes - open.length - close.length)) + close;
  return Buffer.from(
    'HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml;charset=UTF-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    'latin1',
  );
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

if (process.send !== undefined) {
  process.once('message', (config: FloorTlsServerConfig) => {
    const reply = cannedReply(config.replyBytes);
    const server = tls.createServer(
      {
        key: config.keyPem,
        cert: config.certPem,
        minVersion: config.minVersion,
        maxVersion: config.maxVersion,
        secureOptions: constants.SSL_OP_NO_TICKET,
        ...(config.minVersion !== 'TLSv1.2' ? { ciphers: 'DEFAULT:@SECLEVEL=0' } : {}),
      },
      (socket) => serve(socket, reply),
    );
    server.on('tlsClientError', () => undefined);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 });
    });
    process.once('disconnect', () => process.exit(0));
  });
}
