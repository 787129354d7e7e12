/**
 * The far side of bench/scale-session-memory.ts, in its own process: a TLS-PSK server (the
 * suites and versions AMT offers) and a plain TCP server, each answering any bytes with a short
 * HTTP 200 and keeping the connection open. Forked; never run by hand.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface PeerReady {
  readonly tlsPort: number;
  readonly tcpPort: number;
}

const REPLY = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
const answer = (s: net.Socket | tls.TLSSocket): void => {
  s.on('data', () => s.write(REPLY));
  s.on('error', () => undefined);
};

const tlsServer = tls.createServer(
  {
    minVersion: 'TLSv1',
    maxVersion: 'TLSv1.2',
    ciphers: 'PSK-AES128-CBC-SHA:PSK-AES256-CBC-SHA:PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384',
    pskCallback: () => Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZ012345', 'ascii'),
  },
  answer,
);
const tcpServer = net.createServer(answer);
tlsServer.listen(0, '127.0.0.1', 4096);
tcpServer.listen(0, '127.0.0.1', 4096);
await Promise.all([
  new Promise((r) => tlsServer.once('listening', r)),
  new Promise((r) => tcpServer.once('listening', r)),
]);
const ready: PeerReady = {
  tlsPort: (tlsServer.address() as net.AddressInfo).port,
  tcpPort: (tcpServer.address() as net.AddressInfo).port,
};
process.send?.(ready);
process.on('disconnect', () => process.exit(0));
