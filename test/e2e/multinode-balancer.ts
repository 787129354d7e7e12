import net from 'node:net';
import { once } from 'node:events';

/**
 * A TCP load balancer for the hello port, as docs/operations.md describes one in front of
 * several nodes: round robin, transparent (the source address is kept), and a backend that
 * refuses the connection (a dead node) is skipped for the next one. Bytes the device sends
 * before the backend answers are held.
 */
export interface Balancer {
  readonly port: number;
  /** Connections handed to each backend, by port. */
  readonly handed: Map<number, number>;
  close(): Promise<void>;
}

export async function startBalancer(backends: readonly number[]): Promise<Balancer> {
  let next = 0;
  const handed = new Map<number, number>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    client.pause();
    const tryBackend = (left: number): void => {
      if (left === 0 || client.destroyed) {
        client.destroy();
        return;
      }
      const port = backends[next++ % backends.length] as number;
      // Transparent, as the hello port needs: the node sees the device's own address (it
      // connects back to it), so the upstream connection is bound to it (all 127/8 is local).
      const upstream = net.connect({ host: '127.0.0.1', port, localAddress: client.remoteAddress ?? '127.0.0.1' });
      sockets.add(upstream);
      upstream.on('close', () => sockets.delete(upstream));
      let connected = false;
      upstream.on('error', () => {
        if (connected) client.destroy();
        else tryBackend(left - 1);
      });
      upstream.once('connect', () => {
        connected = true;
        handed.set(port, (handed.get(port) ?? 0) + 1);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    tryBackend(backends.length);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    handed,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
